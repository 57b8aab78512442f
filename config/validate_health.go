package config

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/go-viper/mapstructure/v2"

	"github.com/multihomed/multihomed/health"
)

// health converts and validates an uplink's health block. Package health
// owns the rules; its problems carry paths relative to the block and are
// placed under base here.
func (c *checker) health(base string, index int, uplinkName string, r rawHealth) *health.Config {
	h := &health.Config{
		MinUp: r.MinUp, Rise: r.Rise, Fall: r.Fall, Window: r.Window,
		LossEnter: r.LossEnter, LossLeave: r.LossLeave,
		Mark: r.Mark, Table: r.Table, NoBindDevice: r.NoBindDevice,
		BurstProbes: r.BurstProbes, NoBursts: r.NoBursts,
		Interval:      c.duration(base+".interval", r.Interval, 0),
		Timeout:       c.duration(base+".timeout", r.Timeout, 0),
		TimeoutFloor:  c.duration(base+".timeout_floor", r.TimeoutFloor, 0),
		BurstInterval: c.duration(base+".burst_interval", r.BurstInterval, 0),
		RTTEnter:      c.duration(base+".degraded_rtt_enter", r.RTTEnter, 0),
		RTTLeave:      c.duration(base+".degraded_rtt_leave", r.RTTLeave, 0),
		SourceV6:      c.addr(base+".source_v6", r.SourceV6, false),
		SourceV4:      c.addr(base+".source_v4", r.SourceV4, false),
	}
	if r.HoldDown != "" {
		// Still a duration, so an old file keeps validating; never passed on.
		c.duration(base+".hold_down", r.HoldDown, 0)
		c.note(base+".hold_down", "deprecated and ignored: controller.hold_down is the single hold-down (it applies to %s too); remove this key", uplinkName)
	}
	n := c.limit(base+".targets", len(r.Targets), MaxTargets, "probe fewer targets (three in different networks are enough)")
	for j, item := range r.Targets[:n] {
		if t, ok := c.target(fmt.Sprintf("%s.targets[%d]", base, j), item); ok {
			h.Targets = append(h.Targets, t)
		}
	}
	h.ApplyDefaults(index)
	for _, err := range h.Validate() {
		c.healthProblem(base, err)
	}
	return h
}

// target converts one entry of targets: the compact string form or a map.
func (c *checker) target(path string, item any) (health.Target, bool) {
	switch v := item.(type) {
	case string:
		t, err := health.ParseTarget(v)
		if err != nil {
			c.add(path, "%v", err)
			return health.Target{}, false
		}
		return t, true
	case map[string]any:
		c.problems = append(c.problems, unknownKeys(path, v, reflect.TypeOf(rawTarget{}))...)
		var rt rawTarget
		dec, _ := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: &rt, WeaklyTypedInput: true})
		if err := dec.Decode(v); err != nil {
			c.add(path, "wrong type: %s", oneLine(err.Error()))
			return health.Target{}, false
		}
		t := health.Target{
			Kind: health.Kind(rt.Kind), URL: rt.URL, ExpectStatus: rt.ExpectStatus, BodyContains: rt.BodyContains,
			FollowRedirects: rt.FollowRedirects, TLSServerName: rt.TLSServerName, CAFile: rt.CAFile,
			Query: rt.Query, QueryType: rt.QueryType, ExpectAnswer: rt.ExpectAnswer,
			Rise: rt.Rise, Fall: rt.Fall, Window: rt.Window,
			Address:      c.addr(path+".address", rt.Address, false),
			Interval:     c.duration(path+".interval", rt.Interval, 0),
			Timeout:      c.duration(path+".timeout", rt.Timeout, 0),
			TimeoutFloor: c.duration(path+".timeout_floor", rt.TimeoutFloor, 0),
		}
		c.fileRef(path+".ca_file", rt.CAFile)
		if rt.Port < 0 || rt.Port > 65535 {
			c.add(path+".port", "%d is not a port (0-65535)", rt.Port)
		} else {
			t.Port = uint16(rt.Port)
		}
		return t, true
	default:
		c.add(path, "write a target as a string such as icmp://2001:db8:9000:1::10, or as a map with kind and address")
		return health.Target{}, false
	}
}

// healthProblem places a problem from package health under base (empty for
// paths that start at the root).
func (c *checker) healthProblem(base string, err error) {
	var p health.Problem
	if !errors.As(err, &p) {
		// Not a Problem: health broke its contract; still report it whole.
		c.add(base, "%v", err)
		return
	}
	path := p.Path
	if base != "" && path != "" {
		path = base + "." + path
	} else if base != "" {
		path = base
	}
	c.add(path, "%s", p.Message)
}

// healthUnique checks health marks and tables across uplinks.
func (c *checker) healthUnique(uplinks []Uplink) {
	cfgs := make([]*health.Config, len(uplinks))
	for i, u := range uplinks {
		cfgs[i] = u.Health
	}
	for _, err := range health.CheckUnique(cfgs) {
		c.healthProblem("", err)
	}
}
