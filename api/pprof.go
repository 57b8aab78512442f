package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/pprof"
)

// ServePprof serves Go's profiling endpoints (/debug/pprof/: cpu through
// /debug/pprof/profile?seconds=N, heap, goroutine, ...) on addr until ctx
// ends. It is debug.pprof_listen, which validation keeps on loopback: the
// endpoints have no authentication and show the daemon's memory.
func ServePprof(ctx context.Context, addr string, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return serveHTTP(ctx, "pprof", "debug.pprof_listen", addr, mux, log)
}
