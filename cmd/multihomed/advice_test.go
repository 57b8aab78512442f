package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/multihomed/multihomed/config"
)

func TestNexthopCompatAdvice(t *testing.T) {
	installing := &config.Config{}
	installing.BGP.Install.Table = 200
	mode := func(on, known bool, err error) func() (bool, bool, error) {
		return func() (bool, bool, error) { return on, known, err }
	}
	for _, c := range []struct {
		name string
		cfg  *config.Config
		mode func() (bool, bool, error)
		want string // a part of the advice; "" for none
	}{
		{"no bgp.install", &config.Config{}, mode(true, true, nil), ""},
		{"compat mode on", installing, mode(true, true, nil), "sysctl net.ipv4.nexthop_compat_mode=0"},
		{"compat mode off", installing, mode(false, true, nil), ""},
		{"kernel without it", installing, mode(false, false, nil), ""},
		{"unreadable", installing, mode(false, false, errors.New("permission denied")), "cannot read net.ipv4.nexthop_compat_mode: permission denied"},
	} {
		got := nexthopCompatAdvice(c.cfg, c.mode)
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%s: advice %q; want it to hold %q", c.name, got, c.want)
		}
	}
}
