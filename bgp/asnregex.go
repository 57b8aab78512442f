package bgp

import (
	"fmt"
	"strconv"
	"strings"
)

// asnRangeRegexp returns a regular expression (without anchors) matching the
// decimal form of every number in [lo, hi] and nothing else. GoBGP matches
// AS paths by regular expression only, so bogon ASN ranges
// (DESIGN.md section 8) become alternations of digit classes.
func asnRangeRegexp(lo, hi uint32) string {
	var parts []string
	for _, r := range splitByDigits(uint64(lo), uint64(hi)) {
		parts = append(parts, sameLengthRegexp(strconv.FormatUint(r[0], 10), strconv.FormatUint(r[1], 10)))
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, "|") + ")"
}

// splitByDigits splits [lo, hi] into ranges whose ends have the same number
// of decimal digits.
func splitByDigits(lo, hi uint64) [][2]uint64 {
	var out [][2]uint64
	for lo <= hi {
		digits := len(strconv.FormatUint(lo, 10))
		maxSame := uint64(1)
		for i := 0; i < digits; i++ {
			maxSame *= 10
		}
		maxSame-- // 9, 99, 999, ...
		end := min(hi, maxSame)
		out = append(out, [2]uint64{lo, end})
		if end == hi {
			break
		}
		lo = end + 1
	}
	return out
}

// sameLengthRegexp matches every decimal string between lo and hi, which
// have the same length.
func sameLengthRegexp(lo, hi string) string {
	if lo == hi {
		return lo
	}
	if len(lo) == 1 {
		return fmt.Sprintf("[%c-%c]", lo[0], hi[0])
	}
	if lo[0] == hi[0] {
		return lo[:1] + sameLengthRegexp(lo[1:], hi[1:])
	}
	rest := len(lo) - 1
	nines, zeros := strings.Repeat("9", rest), strings.Repeat("0", rest)
	var alts []string
	// lo's first digit with the rest from lo up to 9...9.
	alts = append(alts, lo[:1]+sameLengthRegexp(lo[1:], nines))
	// Whole middle digits.
	if hi[0]-lo[0] > 1 {
		first := fmt.Sprintf("[%c-%c]", lo[0]+1, hi[0]-1)
		if lo[0]+1 == hi[0]-1 {
			first = string(lo[0] + 1)
		}
		alts = append(alts, first+fmt.Sprintf("[0-9]{%d}", rest))
	}
	// hi's first digit with the rest from 0...0 up to hi.
	alts = append(alts, hi[:1]+sameLengthRegexp(zeros, hi[1:]))
	return "(" + strings.Join(alts, "|") + ")"
}
