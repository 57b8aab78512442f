package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ExaBGP healthcheck variants (ExaBGPEdge).
const (
	// ExaBGPDefault runs the healthcheck with its own defaults: a check
	// every 5 s, every 1 s while rising or falling, rise 3, fall 3.
	ExaBGPDefault = "default"
	// ExaBGPTuned checks every 1 s, every 200 ms while rising or falling,
	// fall 2, with a 300 ms ping timeout.
	ExaBGPTuned = "tuned"
)

// ExaBGPEdge runs ExaBGP 4.2 in the edge namespace the way its
// documentation suggests for a service that announces a prefix while a
// check passes: one healthcheck process per ISP (python3 -m exabgp
// healthcheck), its check a ping of the internet host sourced from that
// ISP's link address, a policy rule sending that source through the ISP
// (tables 101 and 102), and the site prefixes announced to that ISP's
// sessions only (--neighbor). ISP-B's announcements carry one prepend, as
// multihomed's ScenarioConfig does.
//
// --withdraw-on-down is set: the healthcheck's default reaction to a
// failed check is a higher MED, which the transit does not compare between
// two different neighbor ASes, so without it no fault would move inbound
// traffic at all. --no-ip-setup keeps it from adding the prefixes to lo.
//
// ExaBGP does not touch the kernel's routes: the edge's egress is two
// static kernel defaults, via ISP-A (metric 100) and ISP-B (metric 200),
// as an ExaBGP edge has.
type ExaBGPEdge struct {
	processEdge
	l       *Lab
	variant string
}

// NewExaBGPEdge prepares an ExaBGP edge; variant is ExaBGPDefault or
// ExaBGPTuned.
func NewExaBGPEdge(l *Lab, variant string) *ExaBGPEdge {
	return &ExaBGPEdge{l: l, variant: variant}
}

// Name implements Edge.
func (e *ExaBGPEdge) Name() string { return "exabgp-" + e.variant }

// exabgpUplink is what differs between the two ISPs for ExaBGP.
type exabgpUplink struct {
	name           string
	table          int
	dev            string
	gw6, gw4       netip.Addr
	local6, local4 netip.Addr
	asn            int
	asPath         string
}

func exabgpUplinks() []exabgpUplink {
	return []exabgpUplink{
		{"isp-a", 101, "eth-a", ISPAAddr6, ISPAAddr4, EdgeAAddr6, EdgeAAddr4, ASNISPA, ""},
		// ExaBGP sends an AS path given with the route as it is (only an
		// empty one gets our ASN), so the prepend is our ASN twice.
		{"isp-b", 102, "eth-b", ISPBAddr6, ISPBAddr4, EdgeBAddr6, EdgeBAddr4, ASNISPB, fmt.Sprintf("%d %d", ASNEdge, ASNEdge)},
	}
}

// healthcheckArgs returns the healthcheck's command line for one ISP
// (documented in docs/benchmarks.md).
func (e *ExaBGPEdge) healthcheckArgs(u exabgpUplink) string {
	wait := "1"
	timing := ""
	if e.variant == ExaBGPTuned {
		wait = "0.3"
		timing = " --interval 1 --fast-interval 0.2 --fall 2"
	}
	args := fmt.Sprintf(`/usr/bin/python3 -m exabgp healthcheck --name %s --no-syslog --cmd "ping -6 -n -q -c 1 -W %s -I %s %s"%s --withdraw-on-down --no-ip-setup --ip %s --ip %s --neighbor %s --neighbor %s`,
		u.name, wait, u.local6, InetAddr6, timing, SitePrefix6, SitePrefix4, u.gw6, u.gw4)
	if u.asPath != "" {
		args += fmt.Sprintf(" --as-path %q", u.asPath)
	}
	return args
}

// Config returns ExaBGP's configuration file.
func (e *ExaBGPEdge) Config() string {
	var b strings.Builder
	for _, u := range exabgpUplinks() {
		fmt.Fprintf(&b, "process hc-%s {\n    run %s;\n    encoder text;\n}\n\n", u.name, e.healthcheckArgs(u))
	}
	for _, u := range exabgpUplinks() {
		for _, fam := range []struct {
			peer, local netip.Addr
			family      string
		}{{u.gw6, u.local6, "ipv6"}, {u.gw4, u.local4, "ipv4"}} {
			fmt.Fprintf(&b, `neighbor %s {
    router-id %s;
    local-address %s;
    local-as %d;
    peer-as %d;
    family {
        %s unicast;
    }
    api {
        processes [ hc-%s ];
    }
}

`, fam.peer, EdgeLANAddr4, fam.local, ASNEdge, u.asn, fam.family, u.name)
		}
	}
	return b.String()
}

// Start implements Edge: the kernel routes and rules, then ExaBGP.
func (e *ExaBGPEdge) Start(ctx context.Context) error {
	if e.dir == "" {
		dir, err := os.MkdirTemp("", "mhlab-exabgp-")
		if err != nil {
			return err
		}
		e.dir = dir
		if err := os.WriteFile(filepath.Join(dir, "exabgp.conf"), []byte(e.Config()), 0o644); err != nil {
			return err
		}
		for _, u := range exabgpUplinks() {
			for _, src := range []netip.Addr{u.local6, u.local4} {
				fam := familyFlag(src)
				_, _ = e.l.Edge.Run(ctx, "ip", fam, "rule", "del", "from", src.String(), "lookup", fmt.Sprint(u.table))
				if _, err := e.l.Edge.Run(ctx, "ip", fam, "rule", "add", "from", src.String(), "lookup", fmt.Sprint(u.table), "pref", "1000"); err != nil {
					return err
				}
			}
		}
	}
	if err := e.Repair(ctx); err != nil {
		return err
	}
	// No pipes for the CLI, stay in the foreground as root, log to
	// standard output (kept by startProcess).
	env := []string{"exabgp_daemon_daemonize=false", "exabgp_daemon_user=root", "exabgp_api_cli=false",
		"exabgp_log_destination=stdout", "exabgp_daemon_pid=" + filepath.Join(e.dir, "exabgp.pid")}
	p, err := startProcess(ctx, e.l.Edge, env, nil, "exabgp", filepath.Join(e.dir, "exabgp.conf"))
	if err != nil {
		return err
	}
	e.d = p
	return nil
}

// Repair implements Edge: the static defaults in the main table and the
// healthchecks' per-ISP tables (a link cut flushes the ones via its link).
func (e *ExaBGPEdge) Repair(ctx context.Context) error {
	for i, u := range exabgpUplinks() {
		for _, gw := range []netip.Addr{u.gw6, u.gw4} {
			fam := familyFlag(gw)
			for _, args := range [][]string{
				{"ip", fam, "route", "replace", "default", "via", gw.String(), "dev", u.dev, "metric", fmt.Sprint(100 * (i + 1))},
				{"ip", fam, "route", "replace", "default", "via", gw.String(), "dev", u.dev, "table", fmt.Sprint(u.table)},
			} {
				if _, err := e.l.Edge.Run(ctx, args...); err != nil {
					return fmt.Errorf("lab: exabgp edge routes: %w", err)
				}
			}
		}
	}
	return nil
}

// Restart implements Edge: SIGTERM (ExaBGP closes its sessions, the
// healthchecks withdraw), then Start.
func (e *ExaBGPEdge) Restart(ctx context.Context) error {
	if e.d != nil {
		_ = e.d.Stop(10 * time.Second)
	}
	return e.Start(ctx)
}

func familyFlag(a netip.Addr) string {
	if a.Is4() {
		return "-4"
	}
	return "-6"
}
