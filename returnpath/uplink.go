package returnpath

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/multihomed/multihomed/routing"
)

// Uplink is one uplink whose inbound connections are answered through
// it; see routing.ReturnUplink, where the type lives so that the
// controller can name it without linking nftables.
type Uplink = routing.ReturnUplink

// role is what one rule of an uplink does.
type role string

const (
	roleOpenTCP role = "open-tcp" // a SYN from outside: remember the connection
	roleOpenUDP role = "open-udp" // a new UDP flow from outside (Options.UDP)
	roleReply   role = "reply"    // a packet from inside of a remembered connection: mark it
)

// unit is everything the table holds for one uplink: a set and its rules.
// Its spec names all that shapes them, so a changed spec is a new set (a
// new name) and new rules, added before the old ones are deleted.
type unit struct {
	Uplink
	inside  netip.Prefix
	timeout time.Duration
	size    uint32
}

func (u unit) spec() string {
	return fmt.Sprintf("%s %#x %s %d %d", u.Device, u.Mark, u.inside, int64(u.timeout/time.Second), u.size)
}

// setName is the unit's set: "conn-" and a digest of its spec (interface
// names may hold characters a reader would not expect in a set name).
func (u unit) setName() string {
	sum := sha256.Sum256([]byte(u.spec()))
	return "conn-" + hex.EncodeToString(sum[:6])
}

// key is a rule's identity in the kernel, stored as its user data.
func (u unit) key(r role) string { return "mh1 " + string(r) + " " + u.spec() }

// parseKey reads a key back. Keys come from the kernel, where anyone with
// CAP_NET_ADMIN can write rules into our table: FuzzParseKey feeds it
// arbitrary bytes.
func parseKey(b []byte) (unit, role, bool) {
	f := strings.Split(string(b), " ")
	if len(f) != 7 || f[0] != "mh1" {
		return unit{}, "", false
	}
	r := role(f[1])
	if r != roleOpenTCP && r != roleOpenUDP && r != roleReply {
		return unit{}, "", false
	}
	u := unit{Uplink: Uplink{Device: f[2]}}
	mark, err := strconv.ParseUint(f[3], 0, 32)
	if err != nil {
		return unit{}, "", false
	}
	u.Mark = uint32(mark)
	if u.inside, err = netip.ParsePrefix(f[4]); err != nil {
		return unit{}, "", false
	}
	secs, err := strconv.ParseInt(f[5], 10, 64)
	if err != nil || secs <= 0 || secs > maxTimeout {
		return unit{}, "", false
	}
	u.timeout = time.Duration(secs) * time.Second
	size, err := strconv.ParseUint(f[6], 10, 32)
	if err != nil {
		return unit{}, "", false
	}
	u.size = uint32(size)
	if validate(u.inside, []Uplink{u.Uplink}) != nil || u.key(r) != string(b) {
		return unit{}, "", false
	}
	return u, r, true
}

// maxTimeout bounds the timeout in seconds (a week: longer than any sane
// idle connection, and far from overflowing a Duration).
const maxTimeout = 7 * 24 * 3600

// validate checks the input of Set. Errors name the uplink and the fix.
func validate(inside netip.Prefix, uplinks []Uplink) error {
	var errs []error
	if !inside.IsValid() || !inside.Addr().Is6() || inside.Addr().Is4In6() {
		errs = append(errs, fmt.Errorf("returnpath: inside %s: give the site's internal IPv6 prefix, such as fd7a:5e1d:9c00::/48", inside))
	} else if inside.Masked() != inside {
		errs = append(errs, fmt.Errorf("returnpath: inside %s has host bits set; use %s", inside, inside.Masked()))
	}
	for i, u := range uplinks {
		at := fmt.Sprintf("returnpath: uplinks[%d] (%s)", i, u.Device)
		switch {
		case u.Device == "" || len(u.Device) > 15 || strings.ContainsAny(u.Device, " /\x00") || u.Device == "." || u.Device == "..":
			errs = append(errs, fmt.Errorf("%s: device %q is not an interface name (1-15 bytes, no spaces or slashes)", at, u.Device))
		case u.Mark == 0:
			errs = append(errs, fmt.Errorf("%s: mark 0 is no mark; give the uplink's probe mark (health.mark)", at))
		}
		for j := range i {
			if uplinks[j].Device == u.Device {
				errs = append(errs, fmt.Errorf("%s: device also at uplinks[%d]; give each uplink its own interface", at, j))
			}
			if uplinks[j].Mark == u.Mark && u.Mark != 0 {
				errs = append(errs, fmt.Errorf("%s: mark %#x also at uplinks[%d]; give each uplink its own mark", at, u.Mark, j))
			}
		}
	}
	return errors.Join(errs...)
}

func sortUplinks(us []Uplink) {
	slices.SortFunc(us, func(a, b Uplink) int { return cmp.Compare(a.Device, b.Device) })
}
