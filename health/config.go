package health

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Kind names a probe kind. Its values are the scheme of the compact target
// form and the YAML value of `kind`.
type Kind string

// Probe kinds.
const (
	// KindICMP is an echo request: ICMPv6 for an IPv6 address, ICMP for IPv4.
	KindICMP Kind = "icmp"
	// KindTCP is a TCP connect (the handshake completes, then the socket closes).
	KindTCP Kind = "tcp"
	// KindHTTP is an HTTP GET checked for status and optionally body.
	KindHTTP Kind = "http"
	// KindHTTPS is KindHTTP over TLS, with certificate verification.
	KindHTTPS Kind = "https"
	// KindDNS is a query over UDP expecting NOERROR (and optionally an answer).
	KindDNS Kind = "dns"
)

// Defaults and limits. The fast profile (see docs/health.md) is interval
// 50ms, timeout 200ms, rise 3, fall 3, window 20 (with controller.hold_down
// 1s).
const (
	DefaultInterval = time.Second
	// DefaultTimeout is the ceiling of the adaptive timeout (see
	// docs/health.md, "Timeouts").
	DefaultTimeout = time.Second
	// DefaultTimeoutFloor is the floor of the adaptive timeout (never above
	// the timeout): a probe to a target 1 ms away is judged lost after
	// 50 ms, so that a busy host's scheduling delays (tens of ms under load)
	// are not taken for loss, while fall 3 still confirms a silent path in
	// 150 ms.
	DefaultTimeoutFloor = 50 * time.Millisecond
	// DefaultBurstInterval and DefaultBurstProbes shape a suspicion burst:
	// that many extra probes per target, that far apart (see Monitor).
	DefaultBurstInterval = 20 * time.Millisecond
	DefaultBurstProbes   = 3
	DefaultRise          = 3
	DefaultFall          = 3
	DefaultWindow        = 20
	DefaultLossEnter     = 10.0 // percent
	DefaultLossLeave     = 5.0  // percent
	DefaultRTTEnter      = 100 * time.Millisecond
	DefaultRTTLeave      = 60 * time.Millisecond
	DefaultExpectStatus  = 200
	DefaultQueryType     = "AAAA"

	MinInterval = 50 * time.Millisecond
	MaxInterval = time.Hour
	MinTimeout  = 10 * time.Millisecond
	MaxTimeout  = time.Minute
	// Limits of burst_interval and burst_probes.
	MinBurstInterval = 10 * time.Millisecond
	MaxBurstInterval = time.Second
	MaxBurstProbes   = 10
	MaxCount         = 100  // upper bound for rise and fall
	MaxWindow        = 1000 // upper bound for window
	MaxTargets       = 32

	// MarkBase and TableBase give the default firewall mark and routing table
	// of the uplink at index i: MarkBase+i and TableBase+i.
	MarkBase  uint32 = 0x4d480100
	TableBase        = 4800
)

// Config is the health block of one uplink (YAML `uplinks[].health`). Zero
// fields take defaults in ApplyDefaults. Field comments give the YAML key.
type Config struct {
	// Targets to probe through this uplink (`targets`), at least one.
	Targets []Target
	// MinUp is k in "k of N targets up" (`min_up`); 0 means a majority.
	MinUp int

	// Interval, Timeout, TimeoutFloor, Rise, Fall and Window are the
	// defaults for targets that leave them zero (`interval`, `timeout`,
	// `timeout_floor`, `rise`, `fall`, `window`). Timeout is the ceiling of
	// each target's adaptive timeout and TimeoutFloor its floor; equal, they
	// make a fixed timeout.
	Interval     time.Duration
	Timeout      time.Duration
	TimeoutFloor time.Duration
	Rise         int
	Fall         int
	Window       int

	// BurstInterval (`burst_interval`) and BurstProbes (`burst_probes`)
	// shape the suspicion bursts: when a probe of a target that is not down
	// is lost or its reply comes later than its RTT estimate allows, every
	// target of the uplink that is not down gets BurstProbes extra probes,
	// BurstInterval apart. NoBursts (`no_bursts`) turns bursts off.
	BurstInterval time.Duration
	BurstProbes   int
	NoBursts      bool

	// LossEnter and LossLeave (percent, `degraded_loss_enter` and
	// `degraded_loss_leave`): the uplink becomes degraded when the loss over
	// the windows of its up targets reaches LossEnter, and leaves degraded
	// only when it is below LossLeave (and the RTT is below RTTLeave).
	LossEnter float64
	LossLeave float64
	// RTTEnter and RTTLeave (`degraded_rtt_enter`, `degraded_rtt_leave`) are
	// the same for the 95th percentile RTT.
	RTTEnter time.Duration
	RTTLeave time.Duration

	// Mark (`mark`) is the firewall mark of this uplink's probe sockets and
	// Table (`table`) the routing table fib/ fills with only this uplink's
	// default route. They must differ between uplinks (CheckUnique).
	Mark  uint32
	Table int
	// SourceV6 and SourceV4 (`source_v6`, `source_v4`) override the probe
	// source address; by default the uplink interface's global address of the
	// target's family is used.
	SourceV6 netip.Addr
	SourceV4 netip.Addr
	// NoBindDevice (`no_bind_device`) stops probe sockets from binding to the
	// uplink's device; the mark alone then pins the path.
	NoBindDevice bool
}

// Target is one thing to probe. Which fields apply depends on Kind.
type Target struct {
	// Kind (`kind`) is the probe kind.
	Kind Kind
	// Address (`address`) is the IP address probed. For http and https it
	// defaults to the URL's host when that is an IP literal.
	Address netip.Addr
	// Port (`port`) for tcp (required), http/https (default from the URL) and
	// dns (default 53).
	Port uint16

	// URL (`url`) for http and https. Its host is sent as Host and TLS
	// server name; the connection goes to Address.
	URL string
	// ExpectStatus (`expect_status`) is the HTTP status wanted (default 200).
	ExpectStatus int
	// BodyContains (`body_contains`), when set, must occur in the first 64 KiB
	// of the body.
	BodyContains string
	// FollowRedirects (`follow_redirects`) follows up to 5 redirects, to the
	// same Address only. Off by default: a redirect is then checked as is.
	FollowRedirects bool
	// TLSServerName (`tls_server_name`) overrides the name verified in the
	// server certificate; CAFile (`ca_file`) is a PEM bundle of roots to
	// trust instead of the system's.
	TLSServerName string
	CAFile        string

	// Query (`query`) and QueryType (`query_type`, default AAAA) for dns.
	// ExpectAnswer (`expect_answer`) also requires an answer of that type.
	Query        string
	QueryType    string
	ExpectAnswer bool

	// Interval (`interval`), Timeout (`timeout`), TimeoutFloor
	// (`timeout_floor`), Rise (`rise`), Fall (`fall`) and Window (`window`,
	// the number of recent probes at the steady interval that loss and RTT
	// are computed over) default to the Config's; TimeoutFloor never
	// defaults above Timeout.
	Interval     time.Duration
	Timeout      time.Duration
	TimeoutFloor time.Duration
	Rise         int
	Fall         int
	Window       int
}

// ApplyDefaults fills the zero fields of c and of its targets. index is the
// uplink's position in the site configuration; it picks the default Mark and
// Table.
func (c *Config) ApplyDefaults(index int) {
	setDur(&c.Interval, DefaultInterval)
	setDur(&c.Timeout, DefaultTimeout)
	setDur(&c.TimeoutFloor, min(DefaultTimeoutFloor, c.Timeout))
	setDur(&c.BurstInterval, DefaultBurstInterval)
	setInt(&c.BurstProbes, DefaultBurstProbes)
	setInt(&c.Rise, DefaultRise)
	setInt(&c.Fall, DefaultFall)
	setInt(&c.Window, DefaultWindow)
	if c.LossEnter == 0 {
		c.LossEnter = DefaultLossEnter
	}
	if c.LossLeave == 0 {
		c.LossLeave = min(DefaultLossLeave, c.LossEnter/2)
	}
	setDur(&c.RTTEnter, DefaultRTTEnter)
	if c.RTTLeave == 0 {
		c.RTTLeave = min(DefaultRTTLeave, c.RTTEnter*6/10)
	}
	if c.MinUp == 0 {
		c.MinUp = (len(c.Targets) + 1) / 2
	}
	if c.Mark == 0 && index >= 0 {
		c.Mark = MarkBase + uint32(index)
	}
	if c.Table == 0 && index >= 0 {
		c.Table = TableBase + index
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		setDur(&t.Interval, c.Interval)
		setDur(&t.Timeout, c.Timeout)
		setDur(&t.TimeoutFloor, min(c.TimeoutFloor, t.Timeout))
		setInt(&t.Rise, c.Rise)
		setInt(&t.Fall, c.Fall)
		setInt(&t.Window, c.Window)
		t.applyKindDefaults()
	}
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

func setInt(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

func (t *Target) applyKindDefaults() {
	switch t.Kind {
	case KindHTTP, KindHTTPS:
		if t.ExpectStatus == 0 {
			t.ExpectStatus = DefaultExpectStatus
		}
		u, err := url.Parse(t.URL)
		if err != nil {
			return // Validate reports it.
		}
		if !t.Address.IsValid() {
			if a, err := netip.ParseAddr(u.Hostname()); err == nil {
				t.Address = a
			}
		}
		if t.Port == 0 {
			if p, err := strconv.ParseUint(u.Port(), 10, 16); err == nil && p != 0 {
				t.Port = uint16(p)
			} else if t.Kind == KindHTTPS {
				t.Port = 443
			} else {
				t.Port = 80
			}
		}
	case KindDNS:
		if t.Port == 0 {
			t.Port = 53
		}
		if t.QueryType == "" {
			t.QueryType = DefaultQueryType
		}
	}
}

// Validate checks a Config after ApplyDefaults. Each error names the field
// path relative to the uplink's health block and says how to fix it, for
// example `targets[2].interval: 20ms is below the 50ms minimum; use 50ms or
// more`.
//
// Every element is a Problem, so a caller can place it under its own path
// (errors.As) or join them into one error.
func (c *Config) Validate() []error {
	var errs []error
	add := func(path, format string, a ...any) { errs = append(errs, newProblem(path, format, a...)) }

	switch n := len(c.Targets); {
	case n == 0:
		add("targets", "none configured; add at least one target (for example icmp://2001:db8:9000:1::10)")
	case n > MaxTargets:
		add("targets", "%d configured, more than the %d maximum; remove some", n, MaxTargets)
	}
	if c.MinUp < 1 || (len(c.Targets) > 0 && c.MinUp > len(c.Targets)) {
		add("min_up", "%d is outside 1..%d (the number of targets); use a value in that range", c.MinUp, len(c.Targets))
	}
	errs = append(errs, checkTiming(c.Interval, c.Timeout, c.TimeoutFloor, c.Rise, c.Fall, c.Window)...)
	if c.BurstInterval < MinBurstInterval || c.BurstInterval > MaxBurstInterval {
		add("burst_interval", "%v is outside %v..%v; use for example %v", c.BurstInterval, MinBurstInterval, MaxBurstInterval, DefaultBurstInterval)
	}
	if c.BurstProbes < 1 || c.BurstProbes > MaxBurstProbes {
		add("burst_probes", "%d is outside 1..%d; use for example %d (at least fall - 1), or no_bursts: true to turn bursts off", c.BurstProbes, MaxBurstProbes, DefaultBurstProbes)
	}
	if c.LossEnter <= 0 || c.LossEnter > 100 {
		add("degraded_loss_enter", "%g%% is outside (0, 100]; use for example 10", c.LossEnter)
	}
	if c.LossLeave < 0 || c.LossLeave >= c.LossEnter {
		add("degraded_loss_leave", "%g%% is not in [0, degraded_loss_enter %g%%); use a lower value so the verdict has hysteresis", c.LossLeave, c.LossEnter)
	}
	if c.RTTEnter <= 0 {
		add("degraded_rtt_enter", "%v must be positive; use for example 100ms", c.RTTEnter)
	}
	if c.RTTLeave <= 0 || c.RTTLeave >= c.RTTEnter {
		add("degraded_rtt_leave", "%v is not in (0, degraded_rtt_enter %v); use a lower positive value so the verdict has hysteresis", c.RTTLeave, c.RTTEnter)
	}
	if c.Mark == 0 {
		add("mark", "0 marks nothing; use a nonzero firewall mark unused elsewhere on the host")
	}
	if c.Table <= 0 || c.Table >= 1<<31 || (c.Table >= 253 && c.Table <= 255) {
		add("table", "%d is reserved or out of range; use a table number in 1..2147483647 other than 253-255", c.Table)
	}
	if c.SourceV6.IsValid() && (!c.SourceV6.Is6() || c.SourceV6.Is4In6() || !usableAddr(c.SourceV6)) {
		add("source_v6", "%v is not a global IPv6 address; use the uplink's IPv6 address or leave it empty", c.SourceV6)
	}
	if c.SourceV4.IsValid() && (!c.SourceV4.Unmap().Is4() || !usableAddr(c.SourceV4.Unmap())) {
		add("source_v4", "%v is not a usable IPv4 address; use the uplink's IPv4 address or leave it empty", c.SourceV4)
	}
	for i := range c.Targets {
		for _, p := range c.Targets[i].validate() {
			p.Path = fmt.Sprintf("targets[%d].%s", i, p.Path)
			errs = append(errs, p)
		}
	}
	return errs
}

// checkTiming checks the timing keys shared by a block and its targets.
func checkTiming(interval, timeout, floor time.Duration, rise, fall, window int) []error {
	var errs []error
	add := func(path, format string, a ...any) { errs = append(errs, newProblem(path, format, a...)) }
	if interval < MinInterval {
		add("interval", "%v is below the %v minimum; use %v or more", interval, MinInterval, MinInterval)
	} else if interval > MaxInterval {
		add("interval", "%v is above the %v maximum; use %v or less", interval, MaxInterval, MaxInterval)
	}
	if timeout < MinTimeout || timeout > MaxTimeout {
		add("timeout", "%v is outside %v..%v; use for example 1s", timeout, MinTimeout, MaxTimeout)
	} else if floor < MinTimeout || floor > timeout {
		add("timeout_floor", "%v is outside %v..timeout (%v); use for example %v, or the timeout itself for a fixed timeout", floor, MinTimeout, timeout, min(DefaultTimeoutFloor, timeout))
	}
	if rise < 1 || rise > MaxCount {
		add("rise", "%d is outside 1..%d; use for example %d", rise, MaxCount, DefaultRise)
	}
	if fall < 1 || fall > MaxCount {
		add("fall", "%d is outside 1..%d; use for example %d", fall, MaxCount, DefaultFall)
	}
	if window < 1 || window > MaxWindow {
		add("window", "%d is outside 1..%d; use for example %d", window, MaxWindow, DefaultWindow)
	}
	return errs
}

// usableAddr reports whether a may be probed or used as a probe source: not
// unspecified, loopback, multicast or link-local (which would need a zone).
func usableAddr(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() &&
		!a.IsLinkLocalUnicast() && !a.IsLinkLocalMulticast() && a.Zone() == ""
}

// validate returns problems with paths relative to the target (the caller
// prefixes "targets[i].").
func (t *Target) validate() []Problem {
	var errs []Problem
	add := func(path, format string, a ...any) { errs = append(errs, newProblem(path, format, a...)) }
	for _, err := range checkTiming(t.Interval, t.Timeout, t.TimeoutFloor, t.Rise, t.Fall, t.Window) {
		errs = append(errs, err.(Problem))
	}

	switch t.Kind {
	case KindICMP, KindTCP, KindHTTP, KindHTTPS, KindDNS:
	case "":
		add("kind", "missing; use one of icmp, tcp, http, https, dns")
		return errs
	default:
		add("kind", "%q is not a probe kind; use one of icmp, tcp, http, https, dns", string(t.Kind))
		return errs
	}
	if !t.Address.IsValid() {
		if t.Kind == KindHTTP || t.Kind == KindHTTPS {
			add("address", "missing; set address, or use an IP literal as the url's host")
		} else {
			add("address", "missing; set the IP address to probe")
		}
	} else if !usableAddr(t.Address.Unmap()) {
		add("address", "%v cannot be probed through an uplink (unspecified, loopback, multicast or link-local); use a global address", t.Address)
	}
	if t.Kind == KindTCP && t.Port == 0 {
		add("port", "missing for a tcp target; set the port to connect to (for example 443)")
	}
	if t.Kind != KindHTTP && t.Kind != KindHTTPS {
		if t.URL != "" {
			add("url", "only http and https targets take a url; remove it")
		}
	} else {
		u, err := url.Parse(t.URL)
		switch {
		case t.URL == "":
			add("url", "missing; set the URL to fetch (for example %s://[2001:db8:9000:1::10]/health)", t.Kind)
		case err != nil:
			add("url", "%q does not parse: %v; fix the URL", t.URL, unwrapURLError(err))
		case u.Scheme != string(t.Kind):
			add("url", "scheme %q does not match kind %s; make them agree", u.Scheme, t.Kind)
		case u.Host == "" || u.Hostname() == "":
			add("url", "%q has no host; use for example %s://[2001:db8:9000:1::10]/health", t.URL, t.Kind)
		case u.User != nil:
			add("url", "credentials in the url are not supported; remove them")
		}
		if t.ExpectStatus < 100 || t.ExpectStatus > 599 {
			add("expect_status", "%d is not an HTTP status; use a value in 100..599 such as 200", t.ExpectStatus)
		}
	}
	if t.Kind == KindDNS {
		if t.Query == "" {
			add("query", "missing for a dns target; set the name to query (for example example.org)")
		} else if _, err := dnsName(t.Query); err != nil {
			add("query", "%q is not a domain name: %v; fix the name", t.Query, err)
		}
		if _, ok := dnsTypes[strings.ToUpper(t.QueryType)]; !ok {
			add("query_type", "%q is not supported; use one of A, AAAA, NS, SOA, MX, TXT, CNAME, PTR, SRV", t.QueryType)
		}
	} else if t.Query != "" || t.QueryType != "" || t.ExpectAnswer {
		add("query", "only dns targets take query, query_type and expect_answer; remove them")
	}
	if t.Kind != KindHTTPS && (t.TLSServerName != "" || t.CAFile != "") {
		add("tls_server_name", "only https targets take tls_server_name and ca_file; remove them")
	}
	if t.Kind != KindHTTP && t.Kind != KindHTTPS && (t.BodyContains != "" || t.FollowRedirects) {
		add("body_contains", "only http and https targets take body_contains and follow_redirects; remove them")
	}
	return errs
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

var dnsTypes = map[string]dnsmessage.Type{
	"A": dnsmessage.TypeA, "AAAA": dnsmessage.TypeAAAA, "NS": dnsmessage.TypeNS,
	"SOA": dnsmessage.TypeSOA, "MX": dnsmessage.TypeMX, "TXT": dnsmessage.TypeTXT,
	"CNAME": dnsmessage.TypeCNAME, "PTR": dnsmessage.TypePTR, "SRV": dnsmessage.TypeSRV,
}

// dnsName converts a presentation name to a fully qualified dnsmessage.Name.
func dnsName(s string) (dnsmessage.Name, error) {
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	if s == "." {
		return dnsmessage.NewName(s)
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" {
			return dnsmessage.Name{}, errors.New("empty label")
		}
		if len(label) > 63 {
			return dnsmessage.Name{}, errors.New("label longer than 63 bytes")
		}
	}
	return dnsmessage.NewName(s)
}

// CheckUnique checks what must differ between the uplinks of one site: the
// firewall mark and the routing table. cfgs[i] is uplinks[i].health after
// ApplyDefaults, nil for an uplink without a health block. Every element is a
// Problem whose Path starts at the configuration root
// (`uplinks[2].health.mark`).
func CheckUnique(cfgs []*Config) []error {
	var errs []error
	marks := map[uint32]int{}
	tables := map[int]int{}
	for i, c := range cfgs {
		if c == nil {
			continue
		}
		if j, ok := marks[c.Mark]; ok {
			errs = append(errs, newProblem(fmt.Sprintf("uplinks[%d].health.mark", i), "%#x is already used by uplinks[%d]; give each uplink its own mark", c.Mark, j))
		} else {
			marks[c.Mark] = i
		}
		if j, ok := tables[c.Table]; ok {
			errs = append(errs, newProblem(fmt.Sprintf("uplinks[%d].health.table", i), "%d is already used by uplinks[%d]; give each uplink its own table", c.Table, j))
		} else {
			tables[c.Table] = i
		}
	}
	return errs
}

// Problem is one fault found by Validate or CheckUnique: where it is and
// what to do about it. Package config places Path under the uplink's own
// path; Error joins both for callers that only report.
type Problem struct {
	// Path is relative to the health block for Validate (`targets[2].interval`,
	// `min_up`) and starts at the configuration root for CheckUnique.
	Path string
	// Message says what is wrong and how to fix it.
	Message string
}

func newProblem(path, format string, a ...any) Problem {
	return Problem{Path: path, Message: fmt.Sprintf(format, a...)}
}

// Error returns "path: message".
func (p Problem) Error() string { return p.Path + ": " + p.Message }

// ParseTarget parses the compact target form:
//
//	icmp://2001:db8:9000:1::10            echo (ICMPv6 or ICMP by family)
//	tcp://[2001:db8:9000:1::10]:443       TCP connect
//	tcp://203.0.113.10:443
//	http://[2001:db8:9000:1::10]:8080/health   GET, expect 200
//	https://[2001:db8:9000:1::10]/health
//	dns://[2001:db8:9000:1::53]:53/example.org/AAAA   port and type optional
//
// The host must be an IP literal: probes never resolve names. The result
// has only the fields the compact form carries; ApplyDefaults fills the rest.
func ParseTarget(s string) (Target, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return Target{}, fmt.Errorf("target %q: no scheme; write it as icmp://ADDR, tcp://[ADDR]:PORT, http(s)://[ADDR]/PATH or dns://[ADDR]/NAME/TYPE", s)
	}
	t := Target{Kind: Kind(scheme)}
	switch t.Kind {
	case KindICMP:
		a, err := parseHostAddr(strings.TrimSuffix(strings.TrimPrefix(rest, "["), "]"))
		if err != nil {
			return Target{}, fmt.Errorf("target %q: %w; write it as icmp://2001:db8:9000:1::10", s, err)
		}
		t.Address = a
	case KindTCP:
		ap, err := netip.ParseAddrPort(rest)
		if err != nil || ap.Port() == 0 {
			return Target{}, fmt.Errorf("target %q: %q is not ADDR:PORT with a nonzero port; write it as tcp://[2001:db8::1]:443 or tcp://192.0.2.1:443", s, rest)
		}
		if ap.Addr().Zone() != "" {
			return Target{}, fmt.Errorf("target %q: zones are not supported; use a global address", s)
		}
		t.Address, t.Port = ap.Addr(), ap.Port()
	case KindHTTP, KindHTTPS:
		u, err := url.Parse(s)
		if err != nil {
			return Target{}, fmt.Errorf("target %q: %v; fix the URL", s, unwrapURLError(err))
		}
		if u.User != nil || u.Opaque != "" {
			return Target{}, fmt.Errorf("target %q: credentials and opaque URLs are not supported; use %s://[ADDR]:PORT/PATH", s, scheme)
		}
		a, err := parseHostAddr(u.Hostname())
		if err != nil {
			return Target{}, fmt.Errorf("target %q: %w; use an IP literal host, or the long form with address and url", s, err)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
				return Target{}, fmt.Errorf("target %q: port %q is not in 1..65535", s, p)
			}
		}
		t.URL, t.Address = s, a
	case KindDNS:
		hostport, path, _ := strings.Cut(rest, "/")
		a, port, err := parseHostOptPort(hostport)
		if err != nil {
			return Target{}, fmt.Errorf("target %q: %w; write it as dns://[2001:db8::53]:53/example.org/AAAA", s, err)
		}
		name, typ, _ := strings.Cut(path, "/")
		if name == "" {
			return Target{}, fmt.Errorf("target %q: no name to query; write it as dns://[2001:db8::53]/example.org/AAAA", s)
		}
		if strings.Contains(typ, "/") {
			return Target{}, fmt.Errorf("target %q: too many path elements; write it as dns://[ADDR]:PORT/NAME/TYPE", s)
		}
		if _, err := dnsName(name); err != nil {
			return Target{}, fmt.Errorf("target %q: %q is not a domain name: %v", s, name, err)
		}
		if typ != "" {
			if _, ok := dnsTypes[strings.ToUpper(typ)]; !ok {
				return Target{}, fmt.Errorf("target %q: query type %q is not supported; use A, AAAA, NS, SOA, MX, TXT, CNAME, PTR or SRV", s, typ)
			}
			typ = strings.ToUpper(typ)
		}
		t.Address, t.Port, t.Query, t.QueryType = a, port, name, typ
	default:
		return Target{}, fmt.Errorf("target %q: scheme %q is not a probe kind; use icmp, tcp, http, https or dns", s, scheme)
	}
	if !usableAddr(t.Address.Unmap()) {
		return Target{}, fmt.Errorf("target %q: %v cannot be probed through an uplink (unspecified, loopback, multicast or link-local); use a global address", s, t.Address)
	}
	return t, nil
}

func parseHostAddr(h string) (netip.Addr, error) {
	a, err := netip.ParseAddr(h)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", h)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q has a zone, which is not supported", h)
	}
	return a, nil
}

func parseHostOptPort(hp string) (netip.Addr, uint16, error) {
	if ap, err := netip.ParseAddrPort(hp); err == nil {
		if ap.Port() == 0 || ap.Addr().Zone() != "" {
			return netip.Addr{}, 0, fmt.Errorf("%q needs a nonzero port and no zone", hp)
		}
		return ap.Addr(), ap.Port(), nil
	}
	a, err := parseHostAddr(strings.TrimSuffix(strings.TrimPrefix(hp, "["), "]"))
	if err != nil {
		return netip.Addr{}, 0, err
	}
	return a, 0, nil
}

// String returns the compact form of t (see ParseTarget); it names the target
// in verdict reasons and logs. Fields the compact form cannot carry are
// omitted.
func (t Target) String() string {
	switch t.Kind {
	case KindICMP:
		return "icmp://" + t.Address.String()
	case KindTCP:
		return "tcp://" + netip.AddrPortFrom(t.Address, t.Port).String()
	case KindHTTP, KindHTTPS:
		return t.URL
	case KindDNS:
		host := t.Address.String()
		if t.Address.Is6() {
			host = "[" + host + "]"
		}
		if t.Port != 0 {
			host = net.JoinHostPort(t.Address.String(), strconv.Itoa(int(t.Port)))
		}
		s := "dns://" + host + "/" + t.Query
		if t.QueryType != "" {
			s += "/" + t.QueryType
		}
		return s
	}
	return string(t.Kind) + "://" + t.Address.String()
}
