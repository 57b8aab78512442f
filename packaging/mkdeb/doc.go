// Command mkdeb writes a Debian package from an nfpm description:
//
//	go run . -config ../nfpm.yaml -target DIR
//
// It lives in a module of its own so nfpm and its dependencies stay out of
// multihomed's go.mod; packaging/build-deb runs it with ${VAR}s of the
// description taken from the environment. It prints the package's path.
package main
