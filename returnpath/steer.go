package returnpath

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	mhnetns "github.com/multihomed/multihomed/internal/netns"
)

// DefaultTable is the nftables table (family ip6) the daemon owns.
const DefaultTable = "multihomed_return"

// Defaults of Options.
const (
	// DefaultTimeout is how long a connection is remembered after its last
	// reply. Longer-idle connections lose their steering: their next reply
	// follows the egress routes.
	DefaultTimeout = 30 * time.Minute
	// DefaultSize is how many connections each uplink remembers. When the
	// set is full, new connections through that uplink are not steered
	// (their replies follow the egress routes) until entries time out.
	DefaultSize = 1 << 18
)

// chainName is the one chain in our table: a filter hook at prerouting,
// priority mangle + 10 (-140). It must run after ip6t_NPT's DNPT (mangle,
// -150) so that it sees the inside destination with both NPTv6 backends
// (the eBPF one translates at tc ingress, before netfilter), and before
// the routing decision, which reads the mark it sets.
const chainName = "prerouting"

var chainPriority = nftables.ChainPriorityRef(*nftables.ChainPriorityMangle + 10)

// Options configure a Steering.
type Options struct {
	// Table is the nftables table name (DefaultTable when empty).
	Table string
	// NetNS is the path of the network namespace to program, such as
	// /run/netns/edge; empty means the caller's.
	NetNS string
	// UDP also remembers UDP flows opened from outside (the first packet
	// conntrack sees as new). Set it only when conntrack sees a flow's
	// inside addresses in both directions: with the eBPF backend, which
	// translates before netfilter. ip6t_NPT translates after conntrack, so
	// conntrack tracks the outside and the inside halves of a flow apart and
	// every reply to an outbound UDP flow would look new, pinning outbound
	// flows to the uplink they started on. TCP needs no conntrack: a SYN
	// without ACK opens a connection.
	UDP bool
	// Timeout is how long a connection is remembered after its last reply
	// (DefaultTimeout when 0; whole seconds).
	Timeout time.Duration
	// Size is how many connections each uplink remembers (DefaultSize when
	// 0).
	Size uint32
	// Logger receives one line per change (slog.Default when nil).
	Logger *slog.Logger
}

// Steering programs the table. It keeps no state of its own (the kernel
// holds it all); two concurrent Set calls race and the last batch applied
// wins. The controller calls it from its one loop.
type Steering struct {
	opts Options
	log  *slog.Logger
}

// New returns a Steering. It does not touch the kernel.
func New(opts Options) *Steering {
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	opts.Timeout = max(opts.Timeout.Truncate(time.Second), time.Second)
	if opts.Size == 0 {
		opts.Size = DefaultSize
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Steering{opts: opts, log: log.With(logKeyTable, opts.Table)}
}

// Log attribute keys.
const (
	logKeyTable = "table"
	logKeyRule  = "rule"
)

// Set makes the table steer the replies of connections to inside opened
// through each of uplinks, and nothing else. It adds what is missing and
// deletes the rest (including rules someone added to our table) in one
// atomic netlink batch, and sends nothing when the kernel already matches:
// the remembered connections of an unchanged uplink survive. It returns the
// uplinks steered afterwards, sorted by device. An empty uplinks leaves an
// empty table.
func (s *Steering) Set(ctx context.Context, inside netip.Prefix, uplinks []Uplink) ([]Uplink, error) {
	if err := validate(inside, uplinks); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	roles := []role{roleOpenTCP, roleReply}
	if s.opts.UDP {
		roles = append(roles, roleOpenUDP)
	}
	wantRules := map[string]unit{}
	wantRoles := map[string]role{}
	wantSets := map[string]unit{}
	for _, up := range uplinks {
		u := unit{Uplink: up, inside: inside, timeout: s.opts.Timeout, size: s.opts.Size}
		wantSets[u.setName()] = u
		for _, r := range roles {
			wantRules[u.key(r)] = u
			wantRoles[u.key(r)] = r
		}
	}
	var reached []Uplink
	err := s.inNetns(func() error {
		c, err := nftables.New()
		if err != nil {
			return fmt.Errorf("returnpath: open nftables: %w", err)
		}
		k, err := s.read(c)
		if err != nil {
			return err
		}
		changed := false
		if k.table == nil {
			k.table = c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv6, Name: s.opts.Table})
			changed = true
		}
		if k.chain == nil {
			k.chain = c.AddChain(&nftables.Chain{
				Name: chainName, Table: k.table, Type: nftables.ChainTypeFilter,
				Hooknum: nftables.ChainHookPrerouting, Priority: chainPriority,
			})
			changed = true
		}
		// Adds first, deletes last, all in one batch the kernel applies
		// atomically: no packet sees the table half changed.
		for _, name := range slices.Sorted(maps.Keys(wantSets)) {
			if _, ok := k.sets[name]; ok {
				continue
			}
			u := wantSets[name]
			set := &nftables.Set{Table: k.table, Name: name, KeyType: keyType, Concatenation: true,
				Dynamic: true, HasTimeout: true, Timeout: u.timeout, Size: u.size}
			if err := c.AddSet(set, nil); err != nil {
				return fmt.Errorf("returnpath: add set %s for %s: %w", name, u.Device, err)
			}
			k.sets[name] = set
			changed = true
		}
		for _, key := range slices.Sorted(maps.Keys(wantRules)) {
			if _, ok := k.rules[key]; ok {
				continue
			}
			u, r := wantRules[key], wantRoles[key]
			c.AddRule(&nftables.Rule{Table: k.table, Chain: k.chain, Exprs: exprs(u, r, k.sets[u.setName()]), UserData: []byte(key)})
			s.log.Info("returnpath: add rule", logKeyRule, key)
			changed = true
		}
		for key, kr := range k.rules {
			if _, ok := wantRules[key]; ok {
				continue
			}
			if err := c.DelRule(kr); err != nil {
				return fmt.Errorf("returnpath: delete rule %q: %w", key, err)
			}
			s.log.Info("returnpath: delete rule", logKeyRule, key)
			changed = true
		}
		for name, set := range k.sets {
			if _, ok := wantSets[name]; !ok {
				c.DelSet(set)
				changed = true
			}
		}
		if changed {
			if err := c.Flush(); err != nil {
				return fmt.Errorf("returnpath: apply table ip6 %s: %w", s.opts.Table, err)
			}
		}
		reached, err = s.uplinksIn(c)
		return err
	})
	return reached, err
}

// Uplinks returns the uplinks the table steers (those with a reply rule),
// sorted by device; none when the table does not exist.
func (s *Steering) Uplinks() ([]Uplink, error) {
	var out []Uplink
	err := s.inNetns(func() error {
		c, err := nftables.New()
		if err != nil {
			return fmt.Errorf("returnpath: open nftables: %w", err)
		}
		out, err = s.uplinksIn(c)
		return err
	})
	return out, err
}

// Delete removes our table (decommission, or a switch to PI mode). Other
// tables are untouched; a missing table is no error.
func (s *Steering) Delete() error {
	return s.inNetns(func() error {
		c, err := nftables.New()
		if err != nil {
			return fmt.Errorf("returnpath: open nftables: %w", err)
		}
		k, err := s.read(c)
		if err != nil || k.table == nil {
			return err
		}
		c.DelTable(k.table)
		if err := c.Flush(); err != nil {
			return fmt.Errorf("returnpath: delete table ip6 %s: %w", s.opts.Table, err)
		}
		return nil
	})
}

func (s *Steering) uplinksIn(c *nftables.Conn) ([]Uplink, error) {
	k, err := s.read(c)
	if err != nil {
		return nil, err
	}
	var out []Uplink
	for key := range k.rules {
		if u, r, ok := parseKey([]byte(key)); ok && r == roleReply {
			if _, ok := k.sets[u.setName()]; ok {
				out = append(out, u.Uplink)
			}
		}
	}
	sortUplinks(out)
	return out, nil
}

// kernel is our table as read: nil table or chain when missing.
type kernel struct {
	table *nftables.Table
	chain *nftables.Chain
	rules map[string]*nftables.Rule
	sets  map[string]*nftables.Set
}

// read finds our table, chain, rules (keyed by their user data; a rule
// that is not ours gets a key no desired rule has, so Set deletes it) and
// sets.
func (s *Steering) read(c *nftables.Conn) (kernel, error) {
	k := kernel{rules: map[string]*nftables.Rule{}, sets: map[string]*nftables.Set{}}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv6)
	if err != nil {
		return k, fmt.Errorf("returnpath: list tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == s.opts.Table {
			k.table = t
		}
	}
	if k.table == nil {
		return k, nil
	}
	sets, err := c.GetSets(k.table)
	if err != nil {
		return k, fmt.Errorf("returnpath: list sets of table ip6 %s: %w", s.opts.Table, err)
	}
	for _, set := range sets {
		k.sets[set.Name] = set
	}
	chain, err := c.ListChain(k.table, chainName)
	if err != nil {
		// Missing chain: Set adds it (nftables reports ENOENT as a plain
		// error; any other failure shows again at Flush).
		return k, nil
	}
	if chain.Type != nftables.ChainTypeFilter || chain.Hooknum == nil || *chain.Hooknum != *nftables.ChainHookPrerouting ||
		chain.Priority == nil || *chain.Priority != *chainPriority {
		return k, fmt.Errorf("returnpath: table ip6 %s has a chain %q that is not a filter prerouting chain at priority %d; remove the table (nft delete table ip6 %s) and let the daemon recreate it", s.opts.Table, chainName, *chainPriority, s.opts.Table)
	}
	k.chain = chain
	rules, err := c.GetRules(k.table, chain)
	if err != nil {
		return k, fmt.Errorf("returnpath: list rules of table ip6 %s: %w", s.opts.Table, err)
	}
	for _, r := range rules {
		key := string(r.UserData)
		if _, _, ok := parseKey(r.UserData); !ok {
			key = fmt.Sprintf("foreign handle %d", r.Handle)
		}
		if _, dup := k.rules[key]; dup {
			key = fmt.Sprintf("duplicate handle %d", r.Handle)
		}
		k.rules[key] = r
	}
	return k, nil
}

func (s *Steering) inNetns(fn func() error) error {
	if s.opts.NetNS == "" {
		return fn()
	}
	if err := mhnetns.DoPath(s.opts.NetNS, fn); err != nil {
		return fmt.Errorf("returnpath: %w", err)
	}
	return nil
}

// keyType is a connection as seen from inside: protocol, client address
// and port, inside server address and port.
var keyType = nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeIP6Addr, nftables.TypeInetService, nftables.TypeIP6Addr, nftables.TypeInetService)

// Registers: the verdict/comparison work uses the 16-byte register 1; the
// key is built in the 4-byte registers from NFT_REG32_00 (8) on, the
// layout nft itself uses for concatenations: protocol (8), client (9-12),
// client port (13), server (14-17), server port (18).
const (
	regWork   = 1
	regKey    = 8
	regClient = 9
	regCPort  = 13
	regServer = 14
	regSPort  = 18
)

// IPv6 header offsets and TCP flags.
const (
	offSaddr = 8
	offDaddr = 24
	offFlags = 13 // TCP flags byte
	tcpFIN   = 0x01
	tcpSYN   = 0x02
	tcpRST   = 0x04
	tcpACK   = 0x10
)

// exprs compiles one rule of u:
//
//	open-tcp: iifname DEV ip6 daddr INSIDE tcp flags & (fin|syn|rst|ack) == syn
//	          update @SET { tcp . ip6 saddr . th sport . ip6 daddr . th dport }
//	open-udp: iifname DEV ip6 daddr INSIDE meta l4proto udp ct state new
//	          update @SET { udp . ip6 saddr . th sport . ip6 daddr . th dport }
//	reply:    ip6 saddr INSIDE
//	          meta l4proto . ip6 daddr . th dport . ip6 saddr . th sport @SET
//	          update @SET { ... the same key ... } meta mark set MARK
//
// The reply rule refreshes the entry's timeout, so a connection is
// remembered while its server answers.
func exprs(u unit, r role, set *nftables.Set) []expr.Any {
	var e []expr.Any
	key := func(clientOff, serverOff uint32) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regKey},
			&expr.Payload{DestRegister: regClient, Base: expr.PayloadBaseNetworkHeader, Offset: clientOff, Len: 16},
			&expr.Payload{DestRegister: regCPort, Base: expr.PayloadBaseTransportHeader, Offset: portOff(clientOff), Len: 2},
			&expr.Payload{DestRegister: regServer, Base: expr.PayloadBaseNetworkHeader, Offset: serverOff, Len: 16},
			&expr.Payload{DestRegister: regSPort, Base: expr.PayloadBaseTransportHeader, Offset: portOff(serverOff), Len: 2},
		}
	}
	update := &expr.Dynset{SrcRegKey: regKey, SetName: set.Name, SetID: set.ID, Operation: unix.NFT_DYNSET_OP_UPDATE, Timeout: u.timeout}
	switch r {
	case roleOpenTCP, roleOpenUDP:
		ifname := make([]byte, unix.IFNAMSIZ)
		copy(ifname, u.Device)
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: regWork},
			&expr.Cmp{Op: expr.CmpOpEq, Register: regWork, Data: ifname})
		e = append(e, inPrefix(offDaddr, u.inside)...)
		if r == roleOpenTCP {
			e = append(e,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regWork},
				&expr.Cmp{Op: expr.CmpOpEq, Register: regWork, Data: []byte{unix.IPPROTO_TCP}},
				&expr.Payload{DestRegister: regWork, Base: expr.PayloadBaseTransportHeader, Offset: offFlags, Len: 1},
				&expr.Bitwise{SourceRegister: regWork, DestRegister: regWork, Len: 1, Mask: []byte{tcpFIN | tcpSYN | tcpRST | tcpACK}, Xor: []byte{0}},
				&expr.Cmp{Op: expr.CmpOpEq, Register: regWork, Data: []byte{tcpSYN}})
		} else {
			e = append(e,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: regWork},
				&expr.Cmp{Op: expr.CmpOpEq, Register: regWork, Data: []byte{unix.IPPROTO_UDP}},
				&expr.Ct{Key: expr.CtKeySTATE, Register: regWork},
				&expr.Bitwise{SourceRegister: regWork, DestRegister: regWork, Len: 4, Mask: nativeU32(expr.CtStateBitNEW), Xor: []byte{0, 0, 0, 0}},
				&expr.Cmp{Op: expr.CmpOpNeq, Register: regWork, Data: []byte{0, 0, 0, 0}})
		}
		e = append(e, key(offSaddr, offDaddr)...)
		return append(e, update)
	default: // roleReply
		e = append(e, inPrefix(offSaddr, u.inside)...)
		e = append(e, key(offDaddr, offSaddr)...)
		return append(e,
			&expr.Lookup{SourceRegister: regKey, SetName: set.Name, SetID: set.ID},
			update,
			&expr.Immediate{Register: regWork, Data: nativeU32(u.Mark)},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: regWork})
	}
}

// portOff is the transport header offset of the port that goes with the
// address at the IPv6 header offset off: source port 0, destination 2.
func portOff(addrOff uint32) uint32 {
	if addrOff == offSaddr {
		return 0
	}
	return 2
}

// inPrefix matches the IPv6 address at offset off against p.
func inPrefix(off uint32, p netip.Prefix) []expr.Any {
	mask := make([]byte, 16)
	for i := range p.Bits() {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	a := p.Addr().As16()
	return []expr.Any{
		&expr.Payload{DestRegister: regWork, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 16},
		&expr.Bitwise{SourceRegister: regWork, DestRegister: regWork, Len: 16, Mask: mask, Xor: make([]byte, 16)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: regWork, Data: a[:]},
	}
}

// nativeU32 encodes v in host byte order, as the kernel keeps marks and
// conntrack state bits in registers.
func nativeU32(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}
