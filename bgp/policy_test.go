package bgp

import (
	"flag"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/multihomed/multihomed/routing"

	"github.com/google/go-cmp/cmp"
	api "github.com/osrg/gobgp/v4/api"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/multihomed/multihomed/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

func policyTestConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load("../config/testdata/valid.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Uplinks[1].BGP.Import = config.ImportFull
	return cfg
}

// TestBuildPoliciesGolden pins the whole policy set for a two-ISP site
// (one import default, one import full) with every export attribute in use.
// Refresh with: go test ./bgp -run TestBuildPoliciesGolden -update
func TestBuildPoliciesGolden(t *testing.T) {
	cfg := policyTestConfig(t)
	anns := BaseAnnouncements(cfg)
	anns["isp-b"][0].GracefulShutdown = true
	for k, v := range anns {
		anns[k] = normalize(v, cfg.Site.Prefixes)
	}
	req := buildPolicies(policyInput{cfg: cfg, export: exportFor(cfg, anns, 0)})
	got, err := prototext.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	// prototext randomises spacing between runs; normalise it.
	norm := strings.Join(strings.Fields(string(got)), " ")
	norm = strings.ReplaceAll(norm, "} ", "}\n")
	const golden = "testdata/policies.golden"
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(norm), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if d := cmp.Diff(string(want), norm); d != "" {
		t.Errorf("policies differ from %s (-want +got):\n%s", golden, d)
	}
}

// TestPolicyInvariants checks the properties that keep the site safe,
// whatever the golden file says.
func TestPolicyInvariants(t *testing.T) {
	cfg := policyTestConfig(t)
	anns := BaseAnnouncements(cfg)
	req := buildPolicies(policyInput{cfg: cfg, export: exportFor(cfg, anns, 0)})
	var imp, exp *api.Policy
	for _, p := range req.Policies {
		switch p.Name {
		case policyImport:
			imp = p
		case policyExport:
			exp = p
		}
	}
	if imp == nil || exp == nil {
		t.Fatalf("policies = %v; want %s and %s", req.Policies, policyImport, policyExport)
	}
	// Our own paths must be accepted by import first, or nothing is announced.
	if first := imp.Statements[0]; first.Conditions.RouteType != api.Conditions_ROUTE_TYPE_LOCAL || first.Actions.RouteAction != api.RouteAction_ROUTE_ACTION_ACCEPT {
		t.Errorf("first import statement = %v; want accept route-type LOCAL", first)
	}
	// Every other import statement is scoped to one uplink's neighbors.
	for _, s := range imp.Statements[1:] {
		if s.Conditions.NeighborSet == nil {
			t.Errorf("import statement %s applies to every neighbor", s.Name)
		}
	}
	// Every export statement is limited to local routes and one uplink.
	// Those that accept also to exactly the site prefixes and strip the
	// marks; the others only modify, for one mark: no transit, ever.
	sets := map[string]*api.DefinedSet{}
	for _, ds := range req.DefinedSets {
		sets[ds.Name] = ds
	}
	accepts, modifies := 0, 0
	for _, s := range exp.Statements {
		c := s.Conditions
		if c.RouteType != api.Conditions_ROUTE_TYPE_LOCAL || c.NeighborSet == nil || c.LargeCommunitySet == nil {
			t.Fatalf("export statement %s is not limited to local routes, one uplink and its marks: %v", s.Name, c)
		}
		switch s.Actions.RouteAction {
		case api.RouteAction_ROUTE_ACTION_ACCEPT:
			accepts++
			if c.PrefixSet == nil {
				t.Fatalf("export statement %s accepts without a prefix set", s.Name)
			}
			for _, p := range sets[c.PrefixSet.Name].Prefixes {
				pfx := netip.MustParsePrefix(p.IpPrefix)
				if !slices.Contains(cfg.Site.Prefixes, pfx) || p.MaskLengthMin != uint32(pfx.Bits()) || p.MaskLengthMax != uint32(pfx.Bits()) {
					t.Errorf("export statement %s exports %v, not exactly a site prefix", s.Name, p)
				}
			}
			if lc := s.Actions.LargeCommunity; lc == nil || lc.Type != api.CommunityAction_TYPE_REMOVE {
				t.Errorf("export statement %s accepts without stripping the marks: %v", s.Name, s.Actions)
			}
		case api.RouteAction_ROUTE_ACTION_UNSPECIFIED:
			modifies++
			if ls := sets[c.LargeCommunitySet.Name]; ls == nil || len(ls.List) != 1 {
				t.Errorf("export statement %s modifies routes not limited to one mark: %v", s.Name, ls)
			}
		default:
			t.Errorf("export statement %s: route action %v", s.Name, s.Actions.RouteAction)
		}
		if ap := s.Actions.AsPrepend; ap != nil && (ap.Repeat > config.MaxPrepend || ap.Asn != cfg.Node.ASN) {
			t.Errorf("export statement %s prepends %v; want our ASN at most %d times", s.Name, ap, config.MaxPrepend)
		}
	}
	// Both uplinks announce both prefixes: one mark per uplink and
	// prefix, and one accepting statement per uplink and family.
	if n := len(cfg.Uplinks) * len(cfg.Site.Prefixes); modifies != n || accepts != 2*len(cfg.Uplinks) {
		t.Errorf("%d marks' statements and %d accepting ones; want %d and %d", modifies, accepts, n, 2*len(cfg.Uplinks))
	}
	// Withdrawing everything from one uplink removes its export statements.
	delete(anns, "isp-a")
	req = buildPolicies(policyInput{cfg: cfg, export: exportFor(cfg, anns, 0)})
	for _, p := range req.Policies {
		for _, s := range p.Statements {
			if p.Name == policyExport && strings.Contains(s.Name, "isp-a") {
				t.Errorf("export statement %s remains for an uplink announcing nothing", s.Name)
			}
		}
	}
}

func TestNormalizeCapsAndFilters(t *testing.T) {
	site := []netip.Prefix{netip.MustParsePrefix("2001:db8:face::/48"), netip.MustParsePrefix("198.51.100.0/24")}
	got := normalize([]routing.Announcement{
		{Prefix: site[0], Prepend: 200},
		{Prefix: netip.MustParsePrefix("203.0.113.0/24")},
		{Prefix: site[1], Prepend: 1},
		{Prefix: site[1], Prepend: 2},
	}, site)
	want := []routing.Announcement{{Prefix: site[1], Prepend: 2}, {Prefix: site[0], Prepend: config.MaxPrepend}}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("normalize (-want +got):\n%s", d)
	}
}

// TestImportChanged: a reload soft-resets inbound (a walk of every route an
// ISP sent) only when the import policy really changed.
func TestImportChanged(t *testing.T) {
	base := loopbackConfig(t)
	for _, tc := range []struct {
		name string
		edit func(*config.Config)
		want bool
	}{
		{"same config", func(*config.Config) {}, false},
		{"export attributes only", func(c *config.Config) { c.Uplinks[0].BGP.Communities = nil; c.Uplinks[1].BGP.Prepend = 1 }, false},
		{"import mode", func(c *config.Config) { c.Uplinks[1].BGP.Import = config.ImportFull }, true},
		{"bogon list", func(c *config.Config) {
			c.Filters.BogonPrefixes = append(slices.Clone(c.Filters.BogonPrefixes), netip.MustParsePrefix("203.0.113.0/24"))
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := loopbackConfig(t)
			tc.edit(cfg)
			if got := importChanged(base, cfg); got != tc.want {
				t.Errorf("importChanged = %v; want %v", got, tc.want)
			}
		})
	}
}

// exportFor is the export state of a speaker that announces anns (and,
// with defaultLP, the default to internal peers) from scratch.
func exportFor(cfg *config.Config, anns map[string][]routing.Announcement, defaultLP uint32) exportState {
	var m markTable
	norm := map[string][]routing.Announcement{}
	for k, v := range anns {
		norm[k] = normalize(v, cfg.Site.Prefixes)
	}
	slots, _ := m.plan(cfg, norm, false)
	return exportStateOf([]map[slotKey]slot{slots}, originations(slots, defaultLP))
}
