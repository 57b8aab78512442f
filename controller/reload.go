package controller

import (
	"errors"
	"reflect"

	"github.com/multihomed/multihomed/config"
)

// ErrReloadRefused is returned (wrapped) for a reload that changes what
// only a restart can change.
var ErrReloadRefused = errors.New("reload refused: node.* and bgp.listen_port change on restart only; the running configuration stays")

// ErrReloadRefusedPA is returned for a reload that changes site.mode,
// nptv6.backend or the dns section: the daemon builds the translator and
// the DNS updater at start.
var ErrReloadRefusedPA = errors.New("reload refused: site.mode, nptv6.backend and dns change on restart only; the running configuration stays")

// CheckReload says whether the running configuration old may be replaced
// by next without a restart. It refuses (ErrReloadRefused) a change of
// node.* (router ID, ASN) or bgp.listen_port, which every session depends
// on, or of PA mode's site.mode, nptv6.backend and dns (ErrReloadRefusedPA),
// and warns about api.*, metrics.* and debug.*, whose listeners keep
// running unchanged until a restart. It is the one home of this rule: the daemon
// asks it before preparing anything, and Loop.Reload enforces it.
func CheckReload(old, next *config.Config) (warnings []string, err error) {
	if next.Node != old.Node || next.BGP.ListenPort != old.BGP.ListenPort {
		return nil, ErrReloadRefused
	}
	if next.Site.Mode != old.Site.Mode || next.NPTv6 != old.NPTv6 || !reflect.DeepEqual(old.DNS, next.DNS) {
		return nil, ErrReloadRefusedPA
	}
	if !reflect.DeepEqual(old.API, next.API) || old.Metrics != next.Metrics {
		warnings = append(warnings, "api and metrics listeners change on restart only; the running ones stay")
	}
	if old.Debug != next.Debug {
		warnings = append(warnings, "debug.pprof_listen changes on restart only; the running setting stays")
	}
	return warnings, nil
}
