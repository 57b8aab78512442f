package health

import (
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseTarget(t *testing.T) {
	good := map[string]Target{
		"icmp://2001:db8:9000:1::10":   {Kind: KindICMP, Address: mustAddr("2001:db8:9000:1::10")},
		"icmp://[2001:db8:9000:1::10]": {Kind: KindICMP, Address: mustAddr("2001:db8:9000:1::10")},
		"icmp://203.0.113.10":          {Kind: KindICMP, Address: mustAddr("203.0.113.10")},
		"tcp://[2001:db8::1]:443":      {Kind: KindTCP, Address: mustAddr("2001:db8::1"), Port: 443},
		"tcp://192.0.2.1:22":           {Kind: KindTCP, Address: mustAddr("192.0.2.1"), Port: 22},
		"http://[2001:db8:9000:1::10]:8080/health": {Kind: KindHTTP, Address: mustAddr("2001:db8:9000:1::10"),
			URL: "http://[2001:db8:9000:1::10]:8080/health"},
		"https://203.0.113.10/": {Kind: KindHTTPS, Address: mustAddr("203.0.113.10"), URL: "https://203.0.113.10/"},
		"dns://[2001:db8:9000:1::53]:5353/example.org/aaaa": {Kind: KindDNS, Address: mustAddr("2001:db8:9000:1::53"),
			Port: 5353, Query: "example.org", QueryType: "AAAA"},
		"dns://203.0.113.53/example.org": {Kind: KindDNS, Address: mustAddr("203.0.113.53"), Query: "example.org"},
	}
	for in, want := range good {
		got, err := ParseTarget(in)
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", in, err)
			continue
		}
		if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
			t.Errorf("ParseTarget(%q) -want +got:\n%s", in, d)
		}
	}
	bad := map[string]string{
		"2001:db8::1":                    "no scheme",
		"ping://2001:db8::1":             `scheme "ping" is not a probe kind`,
		"icmp://example.org":             `"example.org" is not an IP address`,
		"icmp://::1":                     "cannot be probed",
		"icmp://fe80::1%eth0":            "zone",
		"icmp://ff02::1":                 "cannot be probed",
		"tcp://[2001:db8::1]":            "not ADDR:PORT",
		"tcp://[2001:db8::1]:0":          "nonzero port",
		"http://www.example.org/":        "not an IP address",
		"https://u:p@[2001:db8::1]/":     "credentials",
		"http://[2001:db8::1]:99999/":    "port",
		"dns://[2001:db8::53]":           "no name",
		"dns://[2001:db8::53]/a..b/AAAA": "not a domain name",
		"dns://[2001:db8::53]/a/TYPE99":  "not supported",
		"dns://[2001:db8::53]/a/AAAA/x":  "too many",
	}
	for in, want := range bad {
		_, err := ParseTarget(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseTarget(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Targets: []Target{
		{Kind: KindHTTPS, URL: "https://[2001:db8:9000:1::10]/health"},
		{Kind: KindDNS, Address: mustAddr("2001:db8:9000:1::53"), Query: "example.org", Interval: 200 * time.Millisecond},
		{Kind: KindICMP, Address: mustAddr("2001:db8:9000:1::10")},
	}}
	c.ApplyDefaults(2)
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("defaults do not validate: %v", errors.Join(errs...))
	}
	if c.MinUp != 2 || c.Mark != MarkBase+2 || c.Table != TableBase+2 {
		t.Fatalf("uplink defaults: min_up %d mark %#x table %d", c.MinUp, c.Mark, c.Table)
	}
	h, d := c.Targets[0], c.Targets[1]
	if h.Address != mustAddr("2001:db8:9000:1::10") || h.Port != 443 || h.ExpectStatus != 200 || h.Interval != DefaultInterval {
		t.Fatalf("https defaults: %+v", h)
	}
	if d.Port != 53 || d.QueryType != "AAAA" || d.Interval != 200*time.Millisecond || d.Rise != DefaultRise {
		t.Fatalf("dns defaults: %+v", d)
	}
	if c.TimeoutFloor != DefaultTimeoutFloor || h.TimeoutFloor != DefaultTimeoutFloor || c.BurstInterval != DefaultBurstInterval ||
		c.BurstProbes != DefaultBurstProbes || c.NoBursts {
		t.Fatalf("adaptive timeout and burst defaults: floor %v (target %v), bursts %d x %v, off %v",
			c.TimeoutFloor, h.TimeoutFloor, c.BurstProbes, c.BurstInterval, c.NoBursts)
	}
	// The floor never defaults above the timeout, of the block or a target.
	short := Config{Timeout: 30 * time.Millisecond, Targets: []Target{
		{Kind: KindICMP, Address: mustAddr("2001:db8:9000:1::10")},
		{Kind: KindICMP, Address: mustAddr("2001:db8:9000:1::11"), Timeout: 20 * time.Millisecond},
	}}
	short.ApplyDefaults(0)
	if short.TimeoutFloor != 30*time.Millisecond || short.Targets[0].TimeoutFloor != 30*time.Millisecond || short.Targets[1].TimeoutFloor != 20*time.Millisecond {
		t.Fatalf("floors with short timeouts: %v, %v, %v", short.TimeoutFloor, short.Targets[0].TimeoutFloor, short.Targets[1].TimeoutFloor)
	}
	if errs := short.Validate(); len(errs) > 0 {
		t.Fatalf("short timeouts do not validate: %v", errors.Join(errs...))
	}
}

func TestValidateErrors(t *testing.T) {
	base := func() Config {
		c := Config{Targets: []Target{
			{Kind: KindICMP, Address: mustAddr("2001:db8:9000:1::10")},
			{Kind: KindTCP, Address: mustAddr("2001:db8:9000:1::10"), Port: 80},
			{Kind: KindICMP, Address: mustAddr("203.0.113.10")},
		}}
		return c
	}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"fast interval", func(c *Config) { c.Targets[2].Interval = 20 * time.Millisecond },
			"targets[2].interval: 20ms is below the 50ms minimum; use 50ms or more"},
		{"uplink interval", func(c *Config) { c.Interval = 10 * time.Millisecond },
			"interval: 10ms is below the 50ms minimum; use 50ms or more"},
		{"no targets", func(c *Config) { c.Targets = nil },
			"targets: none configured; add at least one target (for example icmp://2001:db8:9000:1::10)"},
		{"min_up", func(c *Config) { c.MinUp = 4 },
			"min_up: 4 is outside 1..3 (the number of targets); use a value in that range"},
		{"loss hysteresis", func(c *Config) { c.LossEnter, c.LossLeave = 10, 10 },
			"degraded_loss_leave: 10% is not in [0, degraded_loss_enter 10%); use a lower value so the verdict has hysteresis"},
		{"rtt hysteresis", func(c *Config) { c.RTTEnter, c.RTTLeave = 100*time.Millisecond, 200*time.Millisecond },
			"degraded_rtt_leave: 200ms is not in (0, degraded_rtt_enter 100ms); use a lower positive value so the verdict has hysteresis"},
		{"table", func(c *Config) { c.Table = 254 },
			"table: 254 is reserved or out of range; use a table number in 1..2147483647 other than 253-255"},
		{"source family", func(c *Config) { c.SourceV6 = mustAddr("198.18.1.2") },
			"source_v6: 198.18.1.2 is not a global IPv6 address; use the uplink's IPv6 address or leave it empty"},
		{"timeout floor above timeout", func(c *Config) { c.Timeout, c.TimeoutFloor = 200*time.Millisecond, 300*time.Millisecond },
			"timeout_floor: 300ms is outside 10ms..timeout (200ms); use for example 50ms, or the timeout itself for a fixed timeout"},
		{"target timeout floor", func(c *Config) {
			c.Targets[1].Timeout, c.Targets[1].TimeoutFloor = 100*time.Millisecond, 5*time.Millisecond
		},
			"targets[1].timeout_floor: 5ms is outside 10ms..timeout (100ms); use for example 50ms, or the timeout itself for a fixed timeout"},
		{"burst interval", func(c *Config) { c.BurstInterval = 2 * time.Second },
			"burst_interval: 2s is outside 10ms..1s; use for example 20ms"},
		{"burst probes", func(c *Config) { c.BurstProbes = 11 },
			"burst_probes: 11 is outside 1..10; use for example 3 (at least fall - 1), or no_bursts: true to turn bursts off"},
		{"rise", func(c *Config) { c.Targets[0].Rise = -1 },
			"targets[0].rise: -1 is outside 1..100; use for example 3"},
		{"kind", func(c *Config) { c.Targets[1].Kind = "udp" },
			`targets[1].kind: "udp" is not a probe kind; use one of icmp, tcp, http, https, dns`},
		{"tcp port", func(c *Config) { c.Targets[1].Port = 0 },
			"targets[1].port: missing for a tcp target; set the port to connect to (for example 443)"},
		{"loopback", func(c *Config) { c.Targets[0].Address = mustAddr("::1") },
			"targets[0].address: ::1 cannot be probed through an uplink (unspecified, loopback, multicast or link-local); use a global address"},
		{"http scheme", func(c *Config) {
			c.Targets[1] = Target{Kind: KindHTTPS, URL: "http://[2001:db8::1]/"}
		}, `targets[1].url: scheme "http" does not match kind https; make them agree`},
		{"http name host", func(c *Config) {
			c.Targets[1] = Target{Kind: KindHTTP, URL: "http://www.example.org/"}
		}, "targets[1].address: missing; set address, or use an IP literal as the url's host"},
		{"status", func(c *Config) {
			c.Targets[1] = Target{Kind: KindHTTP, URL: "http://[2001:db8::1]/", ExpectStatus: 42}
		}, "targets[1].expect_status: 42 is not an HTTP status; use a value in 100..599 such as 200"},
		{"dns query", func(c *Config) {
			c.Targets[1] = Target{Kind: KindDNS, Address: mustAddr("2001:db8::53")}
		}, "targets[1].query: missing for a dns target; set the name to query (for example example.org)"},
		{"dns type", func(c *Config) {
			c.Targets[1] = Target{Kind: KindDNS, Address: mustAddr("2001:db8::53"), Query: "example.org", QueryType: "ANY"}
		}, `targets[1].query_type: "ANY" is not supported; use one of A, AAAA, NS, SOA, MX, TXT, CNAME, PTR, SRV`},
		{"query on icmp", func(c *Config) { c.Targets[0].Query = "example.org" },
			"targets[0].query: only dns targets take query, query_type and expect_answer; remove them"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			c.ApplyDefaults(0)
			errs := c.Validate()
			var got []string
			for _, e := range errs {
				var p Problem
				if !errors.As(e, &p) || p.Path == "" || p.Message == "" {
					t.Fatalf("Validate error %q is not a Problem with a path and a message", e)
				}
				got = append(got, e.Error())
				if e.Error() == tc.want {
					return
				}
			}
			t.Fatalf("Validate() = %q, want it to include %q", got, tc.want)
		})
	}
	c := base()
	c.ApplyDefaults(0)
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatalf("base config: %v", errors.Join(errs...))
	}
}

func TestCheckUnique(t *testing.T) {
	a, b, c := Config{}, Config{}, Config{}
	a.ApplyDefaults(0)
	b.ApplyDefaults(1)
	c.ApplyDefaults(0)
	if errs := CheckUnique([]*Config{&a, nil, &b}); len(errs) != 0 {
		t.Fatalf("distinct uplinks: %v", errs)
	}
	errs := CheckUnique([]*Config{&a, nil, &b, &c})
	var p Problem
	if len(errs) != 2 || !errors.As(errs[0], &p) || p.Path != "uplinks[3].health.mark" || !strings.HasPrefix(p.Message, "0x4d480100 is already used by uplinks[0]") {
		t.Fatalf("duplicates: %v", errs)
	}
}

// fieldPath is what every Validate error must start with: a field path
// relative to the health block.
var fieldPath = regexp.MustCompile(`^(targets\[\d+\]\.)?[a-z_0-9]+: `)

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"icmp://2001:db8:9000:1::10", "icmp://203.0.113.10", "tcp://[2001:db8::1]:443",
		"http://[2001:db8:9000:1::10]:8080/health?x=1", "https://203.0.113.10/", "dns://[2001:db8::53]:53/example.org/AAAA",
		"dns://203.0.113.53/example.org", "dns://[::ffff:1.2.3.4]/a./A", "tcp://[::ffff:192.0.2.1]:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "target ") {
				t.Fatalf("error %q does not name the target", err)
			}
			return
		}
		// The compact form round-trips.
		again, err := ParseTarget(tg.String())
		if err != nil {
			t.Fatalf("ParseTarget(%q) ok, but its String %q does not parse: %v", s, tg.String(), err)
		}
		if again != tg {
			t.Fatalf("round trip of %q: %+v != %+v", s, again, tg)
		}
		// A parsed target, with defaults, validates or explains precisely.
		c := Config{Targets: []Target{tg}}
		c.ApplyDefaults(0)
		for _, e := range c.Validate() {
			if !fieldPath.MatchString(e.Error()) {
				t.Fatalf("Validate error %q does not start with a field path", e)
			}
			if !strings.Contains(e.Error(), "; ") {
				t.Fatalf("Validate error %q does not say how to fix it", e)
			}
		}
	})
}

func FuzzValidate(f *testing.F) {
	f.Add("icmp://2001:db8::1", "http", "http://[2001:db8::1]/", "", "", int64(50e6), int64(1e9), 3, 3, 20, 2, 10.0, 5.0, uint16(0))
	f.Add("tcp://192.0.2.1:22", "dns", "", "example.org", "AAAA", int64(1), int64(-1), 0, 101, 0, -1, 200.0, -1.0, uint16(53))
	f.Fuzz(func(t *testing.T, compact, kind, url, query, qtype string, interval, timeout int64,
		rise, fall, window, minUp int, lossEnter, lossLeave float64, port uint16) {
		c := Config{
			MinUp: minUp, Interval: time.Duration(interval), Timeout: time.Duration(timeout),
			Rise: rise, Fall: fall, Window: window, LossEnter: lossEnter, LossLeave: lossLeave,
		}
		if tg, err := ParseTarget(compact); err == nil {
			c.Targets = append(c.Targets, tg)
		}
		c.Targets = append(c.Targets, Target{Kind: Kind(kind), URL: url, Query: query, QueryType: qtype, Port: port})
		c.ApplyDefaults(0)
		errs := c.Validate()
		for _, e := range errs {
			if !fieldPath.MatchString(e.Error()) || !strings.Contains(e.Error(), "; ") {
				t.Fatalf("Validate error %q lacks a field path or a fix", e)
			}
		}
		if len(errs) > 0 {
			return
		}
		// A valid config must run: trackers build and evaluate without panic.
		u := newUplinkTracker("u", "eth0", c)
		now := time.Unix(0, 0)
		for i := range 3 * MaxCount {
			for _, tt := range u.targets {
				var err error
				if i%3 == 0 {
					err = errTimeout
				}
				tt.observe(now, time.Millisecond, err, false)
			}
			u.evaluate(now)
			now = now.Add(c.Interval)
		}
	})
}
