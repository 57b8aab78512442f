// Package netns creates and removes Linux network namespaces and veth links
// for integration tests and the namespace lab.
//
// DoPath, which runs a function inside any namespace, is also used by
// nptv6 to program a datapath in another namespace.
//
// It drives iproute2 (`ip netns`, `ip link`, `ip addr`) rather than netlink so
// that what a test does is exactly what an operator would type to reproduce
// it. Every namespace it creates carries a caller-chosen unique name; callers
// must Close what they create (tests do so from t.Cleanup, so namespaces go
// even when a test fails). It never touches a namespace it did not create.
package netns
