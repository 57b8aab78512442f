package dnsupdate

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		Zone:    "site.example",
		Server:  netip.MustParseAddrPort("127.0.0.1:53"),
		KeyName: "mh-update",
		Secret:  []byte("0123456789abcdef0123456789abcdef"),
		Hosts: []Host{
			{Name: "www", Internal: netip.MustParseAddr("fd7a:5e1d:9c00:1::80")},
			{Name: "api.site.example.", Internal: netip.MustParseAddr("fd7a:5e1d:9c00:1::81")},
			{Name: "@", Internal: netip.MustParseAddr("fd7a:5e1d:9c00:1::82")},
		},
	}
}

func TestConfigDefaultsAndNames(t *testing.T) {
	n, err := validConfig().normalize()
	if err != nil {
		t.Fatal(err)
	}
	if n.zone != "site.example." || n.keyName != "mh-update." || n.ttl != 30 || n.timeout != DefaultTimeout || n.algorithm != "hmac-sha256." {
		t.Errorf("defaults: %+v", n)
	}
	want := []string{"www.site.example.", "api.site.example.", "site.example."}
	for i, h := range n.hosts {
		if h.Name != want[i] {
			t.Errorf("hosts[%d] = %q, want %q", i, h.Name, want[i])
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // substring of the error naming the field and fix
	}{
		{"no zone", func(c *Config) { c.Zone = "" }, "zone is empty"},
		{"bad zone", func(c *Config) { c.Zone = "a..b" }, `zone "a..b"`},
		{"no server", func(c *Config) { c.Server = netip.AddrPort{} }, "give the primary as address:port"},
		{"port 0", func(c *Config) { c.Server = netip.MustParseAddrPort("192.0.2.53:0") }, "address:port"},
		{"no key", func(c *Config) { c.KeyName = "" }, "key name"},
		{"md5", func(c *Config) { c.Algorithm = "hmac-md5" }, "use hmac-sha256, hmac-sha384 or hmac-sha512"},
		{"short secret", func(c *Config) { c.Secret = []byte("short") }, "secret is 5 bytes"},
		{"ttl fraction", func(c *Config) { c.TTL = 1500 * time.Millisecond }, "ttl 1.5s"},
		{"ttl huge", func(c *Config) { c.TTL = 48 * time.Hour }, "ttl 48h0m0s"},
		{"outside zone", func(c *Config) { c.Hosts[1].Name = "www.other.example." }, "hosts[1].name: \"www.other.example.\" is outside zone site.example."},
		{"duplicate", func(c *Config) { c.Hosts[1].Name = "www.site.example." }, "hosts[1].name \"www.site.example.\" is hosts[0] again"},
		{"empty name", func(c *Config) { c.Hosts[0].Name = " " }, "hosts[0].name: empty"},
		{"ipv4 internal", func(c *Config) { c.Hosts[2].Internal = netip.MustParseAddr("192.0.2.1") }, "hosts[2].internal \"192.0.2.1\""},
		{"no internal", func(c *Config) { c.Hosts[2].Internal = netip.Addr{} }, "hosts[2].internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.change(&c)
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v; want an error containing %q", err, tc.want)
			}
		})
	}
	// The good config itself passes, so the cases above fail for their change.
	if _, err := New(validConfig()); err != nil {
		t.Fatal(err)
	}
}
