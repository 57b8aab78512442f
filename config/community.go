package config

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseCommunity parses a standard community written ASN:value (RFC 1997).
func ParseCommunity(s string) (Community, error) {
	hi, lo, ok := strings.Cut(s, ":")
	a, errA := strconv.ParseUint(hi, 10, 16)
	b, errB := strconv.ParseUint(lo, 10, 16)
	if !ok || errA != nil || errB != nil {
		return 0, fmt.Errorf("%q is not a community; write ASN:value with each part 0-65535, such as 64501:100", s)
	}
	return Community(a<<16 | b), nil
}

// String formats c as ASN:value.
func (c Community) String() string { return fmt.Sprintf("%d:%d", uint32(c)>>16, uint32(c)&0xffff) }

// MarshalText writes c as ASN:value.
func (c Community) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// ParseLargeCommunity parses a large community written
// global:local1:local2 (RFC 8092).
func ParseLargeCommunity(s string) (LargeCommunity, error) {
	parts := strings.Split(s, ":")
	var v [3]uint64
	var err error
	if len(parts) == 3 {
		for i, p := range parts {
			if v[i], err = strconv.ParseUint(p, 10, 32); err != nil {
				break
			}
		}
	}
	if len(parts) != 3 || err != nil {
		return LargeCommunity{}, fmt.Errorf("%q is not a large community; write global:local1:local2 with each part 0-4294967295, such as 64500:1:1", s)
	}
	return LargeCommunity{uint32(v[0]), uint32(v[1]), uint32(v[2])}, nil
}

// String formats l as global:local1:local2.
func (l LargeCommunity) String() string {
	return fmt.Sprintf("%d:%d:%d", l.Global, l.Local1, l.Local2)
}

// MarshalText writes l as global:local1:local2.
func (l LargeCommunity) MarshalText() ([]byte, error) { return []byte(l.String()), nil }
