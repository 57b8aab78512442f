package privilege

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func set(caps ...Cap) Set {
	var s Set
	for _, c := range caps {
		s |= 1 << c
	}
	return s
}

// full is what root has outside a container: every capability up to
// CAP_CHECKPOINT_RESTORE (40).
const full = Set(1<<41 - 1)

func TestCheckRootPasses(t *testing.T) {
	needs := Needs(Uses{EgressTable: 254, Probes: []ProbeUse{{Uplink: "isp-a", ICMP: true}}, EBPFNPTv6: true,
		Listeners: []Listener{{Key: "bgp.listen_port", Port: 179}}}, 1024)
	if err := Check(needs, State{Effective: full, Permitted: full, Bounding: full}); err != nil {
		t.Errorf("root with every capability: %v", err)
	}
}

func TestCheckExactSetPasses(t *testing.T) {
	needs := Needs(Uses{EgressTable: 254, Probes: []ProbeUse{{Uplink: "isp-a", ICMP: true}}}, 1024)
	have := set(NetAdmin, NetRaw)
	if err := Check(needs, State{Effective: have, Permitted: have, Bounding: have}); err != nil {
		t.Errorf("exactly CAP_NET_ADMIN and CAP_NET_RAW: %v", err)
	}
}

func TestCheckMissingNamesCapReasonAndFix(t *testing.T) {
	needs := Needs(Uses{EgressTable: 254, Probes: []ProbeUse{
		{Uplink: "isp-a", ICMP: true}, {Uplink: "isp-b", ICMP: true},
	}}, 1024)
	have := State{Effective: set(NetAdmin), Permitted: set(NetAdmin), Bounding: full}
	err := Check(needs, have)
	var me *MissingError
	if !errors.As(err, &me) {
		t.Fatalf("want *MissingError, got %v", err)
	}
	want := "missing CAP_NET_RAW (ICMP probes on uplinks isp-a, isp-b); run with AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW or as root"
	if got := err.Error(); got != want {
		t.Errorf("message:\n got %s\nwant %s", got, want)
	}
}

func TestCheckRootWithoutCapsFails(t *testing.T) {
	// Root in a container that dropped everything but NET_ADMIN: the uid
	// grants nothing, the effective set decides.
	needs := Needs(Uses{EgressTable: 254, Probes: []ProbeUse{{Uplink: "isp-a", ICMP: true}}}, 1024)
	have := set(NetAdmin)
	err := Check(needs, State{Effective: have, Permitted: have, Bounding: have})
	want := "missing CAP_NET_RAW (ICMP probes on uplink isp-a); run with AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW or as root; " +
		"CAP_NET_RAW not in this process's bounding set, so its parent (container runtime, systemd CapabilityBoundingSet=) must allow it first"
	if err == nil || err.Error() != want {
		t.Errorf("message:\n got %v\nwant %s", err, want)
	}
}

func TestCheckSeveralMissing(t *testing.T) {
	needs := Needs(Uses{EgressTable: 254, Probes: []ProbeUse{{Uplink: "isp-a", ICMP: true}},
		Listeners: []Listener{{Key: "bgp.listen_port", Port: 179}}}, 1024)
	err := Check(needs, State{Bounding: full})
	var me *MissingError
	if !errors.As(err, &me) {
		t.Fatalf("want *MissingError, got %v", err)
	}
	var got []Cap
	for _, n := range me.Missing {
		got = append(got, n.Cap)
	}
	if len(got) != 3 || got[0] != NetBindService || got[1] != NetAdmin || got[2] != NetRaw {
		t.Errorf("missing = %v, want [CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_NET_RAW]", got)
	}
	if len(me.Unbounded) != 0 {
		t.Errorf("all are in the bounding set, got Unbounded %v", me.Unbounded)
	}
}

func TestCapString(t *testing.T) {
	for c, want := range map[Cap]string{NetAdmin: "CAP_NET_ADMIN", NetRaw: "CAP_NET_RAW", BPF: "CAP_BPF", Perfmon: "CAP_PERFMON", NetBindService: "CAP_NET_BIND_SERVICE", 2: "CAP_2"} {
		if got := c.String(); got != want {
			t.Errorf("Cap(%d).String() = %q, want %q", c, got, want)
		}
	}
}

// TestCurrent compares Current with the kernel's other account of the same
// sets, /proc/self/status, so a wrong word order or bit layout shows.
func TestCurrent(t *testing.T) {
	st, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	fields := map[string]Set{}
	for line := range strings.Lines(string(status)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(k, "Cap") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		fields[k] = Set(n)
	}
	for name, got := range map[string]Set{"CapEff": st.Effective, "CapPrm": st.Permitted, "CapBnd": st.Bounding} {
		if want, ok := fields[name]; !ok || got != want {
			t.Errorf("%s: Current says %#x, /proc/self/status %#x (present %v)", name, got, want, ok)
		}
	}
}
