package config

import (
	"net/netip"
	"testing"
)

// TestDebugPprof: pprof is off unless set, a loopback IP:port turns it on,
// anything else is refused with the field named.
func TestDebugPprof(t *testing.T) {
	cfg, err := Parse("test", []byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Debug.PprofListen.IsValid() {
		t.Errorf("debug.pprof_listen = %s by default; want off", cfg.Debug.PprofListen)
	}
	cfg, err = Parse("test", []byte(base+"\ndebug: {pprof_listen: '[::1]:6060'}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddrPort("[::1]:6060"); cfg.Debug.PprofListen != want {
		t.Errorf("debug.pprof_listen = %s; want %s", cfg.Debug.PprofListen, want)
	}
	for _, bad := range []string{"192.0.2.1:6060", "0.0.0.0:6060", "127.0.0.1", "localhost:6060", "127.0.0.1:0"} {
		_, err := Parse("test", []byte(base+"\ndebug: {pprof_listen: '"+bad+"'}\n"), nil)
		assertProblem(t, err, "debug.pprof_listen", "not a loopback IP:port")
	}
}
