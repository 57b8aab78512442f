package nat44

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	mhnetns "github.com/multihomed/multihomed/internal/netns"
)

// DefaultTable is the nftables table (family ip) the daemon owns.
const DefaultTable = "multihomed_nat44"

// chainName is the one chain in our table: a nat hook at postrouting, at
// the source-NAT priority (100), like `nft add chain ip T postrouting
// { type nat hook postrouting priority srcnat; }`.
const chainName = "postrouting"

// Options configure a NAT.
type Options struct {
	// Table is the nftables table name (DefaultTable when empty).
	Table string
	// NetNS is the path of the network namespace to program, such as
	// /run/netns/edge; empty means the caller's.
	NetNS string
	// Logger receives one line per change (slog.Default when nil).
	Logger *slog.Logger
}

// NAT programs the source NAT rules and flushes conntrack entries. It keeps
// no state of its own (the kernel holds it all), so its methods may be
// called from any goroutine; two concurrent Set calls race, and the last
// batch applied wins. The controller calls them from its one loop.
type NAT struct {
	opts Options
	log  *slog.Logger
}

// New returns a NAT. It does not touch the kernel.
func New(opts Options) *NAT {
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &NAT{opts: opts, log: log.With(logKeyTable, opts.Table)}
}

// Log attribute keys.
const (
	logKeyTable  = "table"
	logKeyRule   = "rule"
	logKeyUplink = "uplink"
	logKeyCount  = "count"
)

// Set makes our table hold exactly rules (order does not matter: rules of
// one device must have disjoint inside prefixes). It creates the table and
// chain when missing, adds the missing rules and deletes the others in one
// atomic netlink batch (the kernel applies all or nothing), and sends
// nothing when the kernel already matches. It returns the rules in the
// kernel afterwards, sorted by device and prefix.
//
// Changing a rule's source does not move existing flows: their conntrack
// entries keep the old address until FlushUplink or their timeout.
func (n *NAT) Set(ctx context.Context, rules []Rule) ([]Rule, error) {
	if err := validate(rules); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var reached []Rule
	err := n.inNetns(func() error {
		c, err := nftables.New()
		if err != nil {
			return fmt.Errorf("nat44: open nftables: %w", err)
		}
		table, chain, have, err := n.read(c)
		if err != nil {
			return err
		}
		want := make(map[string]Rule, len(rules))
		for _, r := range rules {
			want[ruleKey(r)] = r
		}
		changed := false
		if table == nil {
			table = c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: n.opts.Table})
			changed = true
		}
		if chain == nil {
			chain = c.AddChain(&nftables.Chain{
				Name: chainName, Table: table, Type: nftables.ChainTypeNAT,
				Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
			})
			changed = true
		}
		// Add before delete, within one batch: the kernel applies the batch
		// atomically, so no packet sees the chain half changed.
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if _, ok := have[k]; ok {
				continue
			}
			r := want[k]
			c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: exprs(r), UserData: []byte(k)})
			n.log.Info("nat44: add rule", logKeyRule, r.String())
			changed = true
		}
		for k, kr := range have {
			if _, ok := want[k]; ok {
				continue
			}
			if err := c.DelRule(kr); err != nil {
				return fmt.Errorf("nat44: delete rule %q: %w", k, err)
			}
			n.log.Info("nat44: delete rule", logKeyRule, k)
			changed = true
		}
		if changed {
			if err := c.Flush(); err != nil {
				return fmt.Errorf("nat44: apply rules to table ip %s: %w", n.opts.Table, err)
			}
		}
		reached, err = n.rulesIn(c)
		return err
	})
	return reached, err
}

// Rules returns the rules in our table, sorted; none when it does not
// exist. Rules whose user data is not ours are left out.
func (n *NAT) Rules() ([]Rule, error) {
	var out []Rule
	err := n.inNetns(func() error {
		c, err := nftables.New()
		if err != nil {
			return fmt.Errorf("nat44: open nftables: %w", err)
		}
		out, err = n.rulesIn(c)
		return err
	})
	return out, err
}

// Delete removes our table and every rule in it (decommission). Other
// tables are untouched. Deleting a table that does not exist is no error.
func (n *NAT) Delete() error {
	return n.inNetns(func() error {
		c, err := nftables.New()
		if err != nil {
			return fmt.Errorf("nat44: open nftables: %w", err)
		}
		table, _, _, err := n.read(c)
		if err != nil || table == nil {
			return err
		}
		c.DelTable(table)
		if err := c.Flush(); err != nil {
			return fmt.Errorf("nat44: delete table ip %s: %w", n.opts.Table, err)
		}
		return nil
	})
}

func (n *NAT) rulesIn(c *nftables.Conn) ([]Rule, error) {
	_, _, have, err := n.read(c)
	if err != nil {
		return nil, err
	}
	out := make([]Rule, 0, len(have))
	for k := range have {
		if r, ok := parseKey([]byte(k)); ok {
			out = append(out, r)
		}
	}
	sortRules(out)
	return out, nil
}

// read finds our table and chain (nil when missing) and the rules in the
// chain keyed by their user data. A rule someone else put in our chain
// (user data not a key) gets a key no desired rule has, so Set deletes it.
func (n *NAT) read(c *nftables.Conn) (*nftables.Table, *nftables.Chain, map[string]*nftables.Rule, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("nat44: list tables: %w", err)
	}
	var table *nftables.Table
	for _, t := range tables {
		if t.Name == n.opts.Table {
			table = t
		}
	}
	if table == nil {
		return nil, nil, map[string]*nftables.Rule{}, nil
	}
	chain, err := c.ListChain(table, chainName)
	if err != nil {
		// Missing chain: Set adds it. nftables reports ENOENT as a plain
		// error; any other failure shows again at Flush.
		return table, nil, map[string]*nftables.Rule{}, nil
	}
	if chain.Type != nftables.ChainTypeNAT || chain.Hooknum == nil || *chain.Hooknum != *nftables.ChainHookPostrouting {
		return nil, nil, nil, fmt.Errorf("nat44: table ip %s has a chain %q that is not a nat postrouting chain; remove the table (nft delete table ip %s) and let the daemon recreate it", n.opts.Table, chainName, n.opts.Table)
	}
	rules, err := c.GetRules(table, chain)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("nat44: list rules of table ip %s: %w", n.opts.Table, err)
	}
	have := make(map[string]*nftables.Rule, len(rules))
	for _, r := range rules {
		k := string(r.UserData)
		if _, ok := parseKey(r.UserData); !ok {
			k = fmt.Sprintf("foreign handle %d", r.Handle)
		}
		if _, dup := have[k]; dup {
			k = fmt.Sprintf("duplicate handle %d", r.Handle)
		}
		have[k] = r
	}
	return table, chain, have, nil
}

// exprs compiles a rule: `oifname DEV ip saddr INSIDE counter snat to SRC`
// or `... counter masquerade`.
func exprs(r Rule) []expr.Any {
	ifname := make([]byte, unix.IFNAMSIZ)
	copy(ifname, r.Device)
	inside := r.Inside.Addr().As4()
	mask := binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-r.Inside.Bits()))
	if r.Inside.Bits() == 0 {
		mask = []byte{0, 0, 0, 0}
	}
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname},
		// IPv4 source address: network header bytes 12..15.
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: inside[:]},
		&expr.Counter{},
	}
	if r.Masquerade() {
		return append(e, &expr.Masq{})
	}
	src := r.Source.As4()
	return append(e,
		&expr.Immediate{Register: 1, Data: src[:]},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegAddrMax: 1},
	)
}

func (n *NAT) inNetns(fn func() error) error {
	if n.opts.NetNS == "" {
		return fn()
	}
	if err := mhnetns.DoPath(n.opts.NetNS, fn); err != nil {
		return fmt.Errorf("nat44: %w", err)
	}
	return nil
}
