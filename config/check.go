package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"time"
)

// checker collects the problems of one validation. Every section's checks
// are methods on it; the helpers here parse the value kinds that recur
// across sections, each reporting a bad value under its path.
//
// After MaxProblems problems the rest are only counted in dropped, not
// formatted: a hostile configuration can provoke one problem per list entry,
// and their text would cost more than the input.
type checker struct {
	opts options
	// profile is the configuration's, once validated.
	profile  Profile
	problems []Problem
	dropped  int
	// notes become part of the Config's advice: allowed, but worth a look.
	notes []Problem
}

// note records advice about a value that is accepted.
func (c *checker) note(path, format string, args ...any) {
	if len(c.notes) < MaxProblems {
		c.notes = append(c.notes, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
}

func (c *checker) add(path, format string, args ...any) {
	if len(c.problems) >= MaxProblems {
		c.dropped++
		return
	}
	c.problems = append(c.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) addr(path, s string, required bool) netip.Addr {
	if s == "" {
		if required {
			c.add(path, "missing; set an IP address")
		}
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		c.add(path, "%q is not an IP address", s)
		return netip.Addr{}
	}
	if a.Zone() != "" {
		c.add(path, "%q has a zone; use a global address", s)
		return netip.Addr{}
	}
	return a.Unmap()
}

func (c *checker) prefix(path, s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		c.add(path, "%q is not a prefix; write it as address/length, such as 2001:db8:face::/48", s)
		return netip.Prefix{}, false
	}
	if p.Masked() != p {
		c.add(path, "%q has host bits set; did you mean %s?", s, p.Masked())
		return netip.Prefix{}, false
	}
	return p, true
}

func (c *checker) duration(path, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.Atoi(s); nerr == nil {
			c.add(path, "%q has no unit; write %ss", s, s)
		} else {
			c.add(path, "%q is not a duration; write it like 90s or 1m30s", s)
		}
		return def
	}
	if d < 0 {
		c.add(path, "%s is negative", s)
		return def
	}
	return d
}

// inRange returns *v when it lies in lo-hi and def when v is unset; a
// value outside the range is reported under path and gives def.
func inRange[T ~int | ~uint8 | ~uint32](c *checker, path string, v *int64, lo, hi int64, def T) T {
	if v == nil {
		return def
	}
	if *v < lo || *v > hi {
		c.add(path, "%d is out of range %d-%d", *v, lo, hi)
		return def
	}
	return T(*v)
}

func (c *checker) asn(path string, v int64, required bool) uint32 {
	switch {
	case v == 0 && required:
		c.add(path, "missing; set an AS number (1 to 4294967294)")
	case v < 0 || v > math.MaxUint32-1:
		c.add(path, "%d is out of range; AS numbers run from 1 to 4294967294", v)
	case v == 23456:
		c.add(path, "23456 is AS_TRANS (RFC 6793), not a real AS; use your 4-byte ASN")
	default:
		return uint32(v)
	}
	return 0
}
