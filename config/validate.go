package config

import (
	"strings"
)

// validate converts the raw file into a Config, section by section. The
// order matters where one section's checks read another's result: filters
// before the site (documentation space), node before uplinks (eBGP), uplinks
// before egress and the site's announceability.
//
// It returns the problems found, at most MaxProblems, and how many more
// were found but not formatted.
func (r rawConfig) validate(opts options) (*Config, []Problem, int) {
	c := &checker{opts: opts}
	cfg := &Config{}

	cfg.Log = Log{Level: strings.ToLower(r.Log.Level), Format: strings.ToLower(r.Log.Format)}
	switch cfg.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		c.add("log.level", "%q is not a level; use debug, info, warn or error", r.Log.Level)
	}
	switch cfg.Log.Format {
	case "text", "json":
	default:
		c.add("log.format", "%q is not a format; use text or json", r.Log.Format)
	}

	switch Profile(r.Profile) {
	case "", ProfileProduction:
		cfg.Profile = ProfileProduction
	case ProfileLab:
		cfg.Profile = ProfileLab
	default:
		c.add("profile", "%q is not a profile; use production or lab", r.Profile)
	}

	c.profile = cfg.Profile
	cfg.Node = c.node(r.Node)
	cfg.Filters = c.filters(r.Filters, cfg.Profile)
	if c.mode(r.Site.Mode) == ModePA {
		cfg.Site = c.paSite(r.Site, cfg.Profile)
	} else {
		c.piOnly(r)
		cfg.Site = c.site(r.Site, cfg.Profile)
		cfg.Site.Mode = ModePI
	}
	cfg.BGP = c.bgpGlobal(r.BGP)
	cfg.Uplinks = c.uplinks(r.Uplinks, cfg)
	if cfg.Site.Mode == ModePA {
		c.paCross(cfg.Site, cfg.Uplinks)
		cfg.NPTv6 = c.nptv6(r.NPTv6)
		if r.DNS != nil {
			cfg.DNS = c.dns(*r.DNS, cfg.Site)
		}
	}
	cfg.Egress = c.egress(r.Egress, cfg.Uplinks)
	cfg.BGP.Install = c.install(r.BGP.Install, cfg.Egress, cfg.Uplinks)
	cfg.Controller = c.controller(r.Controller)
	cfg.IBGP = c.ibgp(r.IBGP, cfg.Node, cfg.BGP, cfg.Uplinks)
	cfg.API = c.api(r.API)
	cfg.Metrics = c.metrics(r.Metrics)
	cfg.Debug = c.debug(r.Debug)
	c.announceable(cfg.Site, cfg.Uplinks)
	cfg.notes = c.notes
	return cfg, c.problems, c.dropped
}
