package nat44

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/multihomed/multihomed/routing"
)

// Rule is the source NAT of one uplink for one inside prefix; see
// routing.NATRule, where the type lives so that the controller can name it
// without linking nftables.
type Rule = routing.NATRule

// key is the rule's identity in the kernel, stored as the nftables rule's
// user data. A version prefix lets a later release recognise (and replace)
// rules written by this one.
func ruleKey(r Rule) string {
	src := "masquerade"
	if !r.Masquerade() {
		src = r.Source.String()
	}
	return "mh1 " + r.Device + " " + r.Inside.String() + " " + src
}

// parseKey reads a key back. Keys come from the kernel, where anyone with
// CAP_NET_ADMIN can write rules into our table: FuzzParseKey feeds it
// arbitrary bytes.
func parseKey(b []byte) (Rule, bool) {
	f := strings.Split(string(b), " ")
	if len(f) != 4 || f[0] != "mh1" {
		return Rule{}, false
	}
	r := Rule{Device: f[1]}
	var err error
	if r.Inside, err = netip.ParsePrefix(f[2]); err != nil {
		return Rule{}, false
	}
	if f[3] != "masquerade" {
		if r.Source, err = netip.ParseAddr(f[3]); err != nil {
			return Rule{}, false
		}
	}
	if validate([]Rule{r}) != nil {
		return Rule{}, false
	}
	return r, true
}

// validate checks rules. Errors name the rule and the fix.
func validate(rules []Rule) error {
	var errs []error
	for i, r := range rules {
		at := fmt.Sprintf("nat44: rules[%d] (%s)", i, r.Device)
		switch {
		case r.Device == "" || len(r.Device) > 15 || strings.ContainsAny(r.Device, " /\x00") || r.Device == "." || r.Device == "..":
			errs = append(errs, fmt.Errorf("%s: device %q is not an interface name (1-15 bytes, no spaces or slashes)", at, r.Device))
		case !r.Inside.IsValid() || !r.Inside.Addr().Is4():
			errs = append(errs, fmt.Errorf("%s: inside %s: give the site's IPv4 prefix, such as 192.0.2.0/24", at, r.Inside))
		case r.Inside.Masked() != r.Inside:
			errs = append(errs, fmt.Errorf("%s: inside %s has host bits set; use %s", at, r.Inside, r.Inside.Masked()))
		case r.Source.IsValid() && (!r.Source.Is4() || r.Source.IsUnspecified()):
			errs = append(errs, fmt.Errorf("%s: source %s: give the uplink's IPv4 address, or leave it empty to masquerade", at, r.Source))
		}
		for j := range i {
			if rules[j].Device == r.Device && rules[j].Inside.Overlaps(r.Inside) {
				errs = append(errs, fmt.Errorf("%s: inside %s overlaps rules[%d] inside %s on the same device; the first match would win, so give each device disjoint prefixes", at, r.Inside, j, rules[j].Inside))
			}
		}
	}
	return errors.Join(errs...)
}

// sortRules orders rules by device, then prefix, for stable output.
func sortRules(rs []Rule) {
	slices.SortFunc(rs, func(a, b Rule) int {
		return cmp.Or(strings.Compare(a.Device, b.Device), a.Inside.Addr().Compare(b.Inside.Addr()), a.Inside.Bits()-b.Inside.Bits())
	})
}
