package bgp

import (
	"math/rand/v2"
	"regexp"
	"strconv"
	"testing"
)

func TestASNRangeRegexp(t *testing.T) {
	ranges := [][2]uint32{{0, 0}, {23456, 23456}, {64496, 131071}, {64512, 65535}, {65552, 131071}, {4200000000, 4294967295}, {1, 9}, {5, 1234}, {99, 100}}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, r := range ranges {
		re := regexp.MustCompile("^" + asnRangeRegexp(r[0], r[1]) + "$")
		probe := []uint32{0, 1, 9, 10, 99, 100, 23455, 23456, 23457, 64495, 64496, 64511, 64512, 65535, 65536, 131071, 131072, 4199999999, 4200000000, 4294967295}
		for _, d := range []uint32{0, 1, 2} {
			probe = append(probe, r[0]-d, r[0]+d, r[1]-d, r[1]+d)
		}
		for i := 0; i < 2000; i++ {
			probe = append(probe, rng.Uint32(), r[0]+rng.Uint32N(r[1]-r[0]+1))
		}
		for _, n := range probe {
			want := r[0] <= n && n <= r[1]
			if got := re.MatchString(strconv.FormatUint(uint64(n), 10)); got != want {
				t.Fatalf("range %v regexp %s: match(%d) = %v, want %v", r, re, n, got, want)
			}
		}
	}
}
