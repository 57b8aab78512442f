package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/multihomed/multihomed/api"
	"github.com/multihomed/multihomed/bgp"
	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/controller"
	"github.com/multihomed/multihomed/dnsupdate"
	"github.com/multihomed/multihomed/nat44"
	"github.com/multihomed/multihomed/nptv6"
	"github.com/multihomed/multihomed/returnpath"
	"github.com/multihomed/multihomed/routing"
)

// paParts are PA mode's appliers: the NPTv6 datapath, the return-path
// marking, the IPv4 source NAT (nil without nat44) and the DNS runner (nil
// without a dns section).
type paParts struct {
	translator nptv6.Datapath
	ret        *returnpath.Steering
	nat        *nat44.NAT
	runner     *dnsupdate.Runner
}

// newPA builds PA mode's appliers for cfg; nil in PI mode. Nothing is
// applied until the loop's first pass.
func newPA(cfg *config.Config, log *slog.Logger) (*paParts, error) {
	if cfg.Site.Mode != config.ModePA {
		return nil, nil
	}
	p := &paParts{}
	var err error
	switch cfg.NPTv6.Backend {
	case config.NPTv6Kernel:
		p.translator, err = nptv6.NewKernel(nptv6.KernelOptions{Logger: log})
	default:
		p.translator, err = nptv6.NewEBPF(nptv6.EBPFOptions{PinPath: cfg.NPTv6.PinPath, Logger: log})
	}
	if err != nil {
		return nil, fmt.Errorf("nptv6.backend %s: %w", cfg.NPTv6.Backend, err)
	}
	// UDP flows can be remembered only when conntrack sees their inside
	// addresses both ways: the eBPF backend translates before netfilter,
	// ip6t_NPT after conntrack (returnpath.Options.UDP).
	p.ret = returnpath.New(returnpath.Options{UDP: cfg.NPTv6.Backend == config.NPTv6EBPF, Logger: log})
	if slices.ContainsFunc(cfg.Uplinks, func(u config.Uplink) bool { return u.NAT44 != nil }) {
		p.nat = nat44.New(nat44.Options{Logger: log})
	}
	if d := cfg.DNS; d != nil {
		hosts := make([]dnsupdate.Host, 0, len(d.Hosts))
		for _, h := range d.Hosts {
			hosts = append(hosts, dnsupdate.Host{Name: h.Name, Internal: h.Internal})
		}
		u, err := dnsupdate.New(dnsupdate.Config{Zone: d.Zone, Server: d.Server, KeyName: d.KeyName, Algorithm: d.Algorithm,
			Secret: []byte(d.Secret.Reveal()), TTL: d.TTL, Hosts: hosts})
		if err != nil {
			p.translator.Close()
			return nil, fmt.Errorf("dns: %w", err)
		}
		p.runner = dnsupdate.NewRunner(u, dnsupdate.RunnerOptions{Logger: log})
	}
	return p, nil
}

// wire hands the appliers to the loop's dependencies.
func (p *paParts) wire(d *controller.Deps) {
	if p == nil {
		return
	}
	d.Translator = p.translator
	d.Return = p.ret
	if p.nat != nil {
		d.NAT = p.nat
	}
	if p.runner != nil {
		d.DNS = p.runner
	}
}

// reader is the translator for the API's live counters (nil in PI mode).
func (p *paParts) reader() api.TranslationReader {
	if p == nil {
		return nil
	}
	return p.translator
}

// start runs the DNS runner in g.
func (p *paParts) start(ctx context.Context, g *errgroup.Group) {
	if p != nil && p.runner != nil {
		g.Go(func() error { return p.runner.Run(ctx) })
	}
}

// close releases the translator's handles; the kernel keeps translating
// (a restart does not interrupt forwarding).
func (p *paParts) close() {
	if p != nil {
		p.translator.Close()
	}
}

// speakerView is the speaker as the loop sees it: in PA mode an uplink may
// have no BGP session, so the speaker runs cfg.SpeakerView() and a reset of
// an uplink without sessions is nothing to do.
type speakerView struct{ *bgp.Speaker }

// Reconfigure gives the speaker the uplinks that have BGP.
func (s speakerView) Reconfigure(ctx context.Context, cfg *config.Config) error {
	return s.Speaker.Reconfigure(ctx, cfg.SpeakerView())
}

// ResetUplink resets the uplink's sessions, if it has any.
func (s speakerView) ResetUplink(ctx context.Context, uplink, reason string) error {
	if !s.hasSessions(uplink) {
		return nil
	}
	return s.Speaker.ResetUplink(ctx, uplink, reason)
}

// CloseUplink closes the uplink's sessions, if it has any.
func (s speakerView) CloseUplink(ctx context.Context, uplink, reason string) error {
	if !s.hasSessions(uplink) {
		return nil
	}
	return s.Speaker.CloseUplink(ctx, uplink, reason)
}

func (s speakerView) hasSessions(uplink string) bool {
	return slices.ContainsFunc(s.Sessions(), func(st routing.SessionState) bool { return st.Uplink == uplink })
}
