package config

import "net/netip"

// Debug is the debug section: tools for developers, all off by default.
// Read at start only.
type Debug struct {
	// PprofListen is the loopback IP:port of Go's pprof endpoints
	// (/debug/pprof/...); the zero value turns them off. Loopback only: a
	// profile shows the daemon's memory, and the endpoints have no
	// authentication.
	PprofListen netip.AddrPort
}

type rawDebug struct {
	PprofListen string `mapstructure:"pprof_listen"`
}

func (c *checker) debug(r rawDebug) Debug {
	if r.PprofListen == "" {
		return Debug{}
	}
	ap, err := netip.ParseAddrPort(r.PprofListen)
	if err != nil || ap.Port() == 0 || !ap.Addr().IsLoopback() {
		c.add("debug.pprof_listen", "%q is not a loopback IP:port; write one such as 127.0.0.1:6060 or [::1]:6060, or leave it out to turn pprof off", r.PprofListen)
		return Debug{}
	}
	return Debug{PprofListen: ap}
}
