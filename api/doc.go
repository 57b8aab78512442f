// Package api serves the NOC interface: the multihomed.v1 gRPC service
// (api/v1), grpc.health.v1 and server reflection on a unix socket and,
// optionally, on TCP with TLS and client certificates; and the Prometheus
// metrics endpoint with /healthz and /readyz on its own listener.
//
// It depends only on two small interfaces it defines: Controller (what it
// reads of and asks of the controller loop) and ConfigStore (the
// configuration in force, validation and reload), so its tests run against
// fakes over bufconn and the end-to-end tests against the real daemon.
//
// Reads come from the controller's atomically swapped status and bounded
// event history; writes go through the loop's commands. Nothing here may
// block the controller: event watchers read the history on their own
// goroutines and a slow client loses events (and is told so) rather than
// holding anything up.
//
// Every call is authorized (viewer: read calls; operator: the writes;
// admin: also Shutdown) and every write is audited in the log with who, what and the result. Sentinel
// errors of other packages are mapped to gRPC status codes here, and only
// here. GoBGP's own gRPC API is a different thing and is never started.
// Clients use api/client, never this package (it links the whole daemon).
package api
