// Package nptv6 implements IPv6-to-IPv6 Network Prefix Translation (NPTv6,
// RFC 6296) for PA mode: the site uses a ULA prefix inside and each ISP's PA
// prefix outside, and a stateless, checksum-neutral translator at each uplink
// maps one to the other.
//
// The package owns three things:
//
//   - the core: the RFC 6296 arithmetic on addresses (Translator, which
//     lives in the pure subpackage rfc6296 so the controller can use it
//     without linking the datapaths) and on whole packets (Table), in pure
//     Go. It is the reference: both datapaths are tested against it.
//   - the datapaths that run the mapping in the kernel, behind the
//     declarative Datapath interface: an eBPF tc program attached to each
//     uplink (EBPF), and ip6tables SNPT/DNPT rules in the mangle table
//     (Kernel). EBPF is split by job: ebpf_attach.go loads the programs and
//     attaches them to an uplink's hooks (TCX or tc), ebpf_maps.go encodes
//     mappings in the BPF maps and reads them back, ebpf_set.go is the
//     declarative Set in named steps.
//   - the kernel objects those datapaths create: BPF programs, maps and links
//     pinned under one bpffs directory, and ip6tables rules carrying one
//     comment tag.
//
// It must never: decide which uplinks carry traffic (the controller does),
// touch routes or rules (fib/ does), touch kernel objects it did not create
// (everything it removes carries its pin directory or its rule comment), or
// let netlink or BPF wire types out of the package (callers see netip types
// and plain structs).
package nptv6
