package nptv6

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// Chains the Kernel backend owns in the mangle table. Everything it adds
// lives in them, and the only rules it adds elsewhere are the two jumps.
const (
	chainPre  = "MHNPT-PRE"  // jumped to from PREROUTING: DNPT
	chainPost = "MHNPT-POST" // jumped to from POSTROUTING: SNPT
	// commentTag starts the comment of every rule, followed by the mapping
	// as "<interface> <internal> <external>" so Mappings can read it back.
	commentTag = "mh-nptv6"
)

// KernelOptions configure the Kernel backend.
type KernelOptions struct {
	// Command is the ip6tables program: "ip6tables" (the default; on Debian
	// 12 the nf_tables variant), "ip6tables-nft" or "ip6tables-legacy". Both
	// variants drive ip6t_NPT; do not mix them on one host.
	Command string
	// NetNS is the path of the network namespace to program, such as
	// /run/netns/edge. Empty means the process's own namespace.
	NetNS string
	// Logger receives one line per rule added or removed. Nil discards.
	Logger *slog.Logger
}

// Kernel is the Datapath that programs the kernel's own translator,
// ip6t_NPT: one SNPT rule (mangle POSTROUTING, -o uplink -s internal) and one
// DNPT rule (mangle PREROUTING, -i uplink -d external) per mapping. Each rule
// is restricted to its prefix: a bare SNPT would also rewrite link-local
// neighbour discovery and break the link (DESIGN.md section 9).
//
// ip6t_NPT does not drop what RFC 6296 says to drop (subnet 0xFFFF, all-zero
// IID) and it cannot hairpin locally: Set refuses hairpin mappings.
type Kernel struct {
	opts KernelOptions
	log  *slog.Logger
	// mu serialises calls: ip6tables edits are read-modify-write.
	mu sync.Mutex
}

var _ Datapath = (*Kernel)(nil)

// ErrHairpinUnsupported is returned by the Kernel backend for a mapping with
// Hairpin set.
var ErrHairpinUnsupported = errors.New("the kernel backend (ip6t_NPT) cannot hairpin locally; use the eBPF backend or set hairpin to false")

// NewKernel returns a Kernel backend. It changes nothing until Set.
func NewKernel(opts KernelOptions) (*Kernel, error) {
	if opts.Command == "" {
		opts.Command = "ip6tables"
	}
	if _, err := exec.LookPath(opts.Command); err != nil {
		return nil, fmt.Errorf("nptv6: kernel backend needs %s: %w (install the Debian package iptables)", opts.Command, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Kernel{opts: opts, log: log.With(logKeyBackend, "ip6t_NPT")}, nil
}

func (k *Kernel) run(ctx context.Context, args ...string) (string, error) {
	var out, stderr bytes.Buffer
	err := inNetns(k.opts.NetNS, func() error {
		cmd := exec.CommandContext(ctx, k.opts.Command, append([]string{"-w", "5", "-t", "mangle"}, args...)...)
		cmd.Stdout, cmd.Stderr = &out, &stderr
		return cmd.Run()
	})
	if err != nil {
		return "", fmt.Errorf("nptv6: %s -t mangle %s: %w: %s", k.opts.Command, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), nil
}

// ruleSpecs returns the SNPT and DNPT rule specifications (without the
// "-A chain") for t.
func ruleSpecs(t *Translator) (post, pre []string) {
	m := t.Mapping()
	comment := fmt.Sprintf("%s %s %s %s", commentTag, m.Interface, m.Internal, m.External)
	in, ex := t.Internal().String(), t.External().String()
	post = []string{"-s", in, "-o", m.Interface, "-m", "comment", "--comment", comment, "-j", "SNPT", "--src-pfx", in, "--dst-pfx", ex}
	pre = []string{"-d", ex, "-i", m.Interface, "-m", "comment", "--comment", comment, "-j", "DNPT", "--src-pfx", ex, "--dst-pfx", in}
	return post, pre
}

// kernelRule is one rule found in our chains.
type kernelRule struct {
	chain   string
	spec    []string // as listed by -S, without "-A chain" and counters
	mapping Mapping
	ok      bool // the comment parsed as a mapping
	packets uint64
	bytes   uint64
}

// chains returns the names of the user chains in the mangle table.
func (k *Kernel) chains(ctx context.Context) (map[string]bool, error) {
	out, err := k.run(ctx, "-S")
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "-N" {
			have[f[1]] = true
		}
	}
	return have, nil
}

func (k *Kernel) ensureChains(ctx context.Context) error {
	have, err := k.chains(ctx)
	if err != nil {
		return err
	}
	for _, c := range []struct{ chain, hook string }{{chainPre, "PREROUTING"}, {chainPost, "POSTROUTING"}} {
		if !have[c.chain] {
			if _, err := k.run(ctx, "-N", c.chain); err != nil {
				return err
			}
		}
		if _, err := k.run(ctx, "-C", c.hook, "-j", c.chain); err != nil {
			if _, err := k.run(ctx, "-I", c.hook, "1", "-j", c.chain); err != nil {
				return err
			}
		}
	}
	return nil
}

func (k *Kernel) list(ctx context.Context) ([]kernelRule, error) {
	// The whole table in one listing: listing a chain that does not exist
	// fails with messages that differ between the nft and legacy variants.
	out, err := k.run(ctx, "-S", "-v")
	if err != nil {
		return nil, err
	}
	var rules []kernelRule
	for _, line := range strings.Split(out, "\n") {
		f := splitQuoted(line)
		if len(f) < 2 || f[0] != "-A" || (f[1] != chainPost && f[1] != chainPre) {
			continue
		}
		r := kernelRule{chain: f[1]}
		for i := 2; i < len(f); i++ {
			if f[i] == "-c" && i+2 < len(f) {
				r.packets, _ = strconv.ParseUint(f[i+1], 10, 64)
				r.bytes, _ = strconv.ParseUint(f[i+2], 10, 64)
				i += 2
				continue
			}
			r.spec = append(r.spec, f[i])
			if f[i] == "--comment" && i+1 < len(f) {
				r.mapping, r.ok = parseComment(f[i+1])
			}
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func parseComment(c string) (Mapping, bool) {
	f := strings.Fields(c)
	if len(f) != 4 || f[0] != commentTag {
		return Mapping{}, false
	}
	in, err1 := netip.ParsePrefix(f[2])
	ex, err2 := netip.ParsePrefix(f[3])
	if err1 != nil || err2 != nil {
		return Mapping{}, false
	}
	return Mapping{Interface: f[1], Internal: in, External: ex}, true
}

// splitQuoted splits an ip6tables -S line into words, honouring the double
// quotes ip6tables puts around comments with spaces.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	inQ, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQ && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			inQ, have = !inQ, true
		case (c == ' ' || c == '\t') && !inQ:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// Set implements Datapath.
func (k *Kernel) Set(ctx context.Context, ms []Mapping) ([]Mapping, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	tb, err := NewTable(ms)
	if err != nil {
		return k.mappingsLocked(ctx, fmt.Errorf("nptv6: kernel set: %w", err))
	}
	for i, m := range ms {
		if m.Hairpin {
			return k.mappingsLocked(ctx, fmt.Errorf("nptv6: kernel set: mappings[%d].hairpin (%s): %w", i, m, ErrHairpinUnsupported))
		}
	}
	if err := k.ensureChains(ctx); err != nil {
		return k.mappingsLocked(ctx, err)
	}
	have, err := k.list(ctx)
	if err != nil {
		return nil, err
	}
	key := func(chain string, spec []string) string { return chain + "\x00" + strings.Join(spec, "\x00") }
	present := map[string]bool{}
	for _, r := range have {
		present[key(r.chain, r.spec)] = true
	}
	want := map[string]bool{}
	// Add before delete: a mapping that stays never stops translating.
	for _, t := range tb.Translators() {
		post, pre := ruleSpecs(t)
		for _, r := range []struct {
			chain string
			spec  []string
		}{{chainPost, post}, {chainPre, pre}} {
			want[key(r.chain, r.spec)] = true
			if present[key(r.chain, r.spec)] {
				continue
			}
			if _, err := k.run(ctx, append([]string{"-A", r.chain}, r.spec...)...); err != nil {
				return k.mappingsLocked(ctx, err)
			}
			k.log.Info("nptv6 rule added", logKeyChain, r.chain, logKeyMapping, t.Mapping().String())
		}
	}
	for _, r := range have {
		if want[key(r.chain, r.spec)] {
			continue
		}
		if _, err := k.run(ctx, append([]string{"-D", r.chain}, r.spec...)...); err != nil {
			return k.mappingsLocked(ctx, err)
		}
		k.log.Info("nptv6 rule removed", logKeyChain, r.chain, logKeyRule, strings.Join(r.spec, " "))
	}
	return k.mappingsLocked(ctx, nil)
}

// mappingsLocked reads the state back and joins any read error to err.
func (k *Kernel) mappingsLocked(ctx context.Context, err error) ([]Mapping, error) {
	ms, rerr := k.mappings(ctx)
	return ms, errors.Join(err, rerr)
}

// mappings returns the mappings with both their SNPT and DNPT rules in
// place.
func (k *Kernel) mappings(ctx context.Context) ([]Mapping, error) {
	rules, err := k.list(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[Mapping]int{}
	for _, r := range rules {
		if r.ok {
			seen[r.mapping] |= map[string]int{chainPost: 1, chainPre: 2}[r.chain]
		}
	}
	var ms []Mapping
	for m, v := range seen {
		if v == 3 {
			ms = append(ms, m)
		}
	}
	return sortMappings(ms), nil
}

// Mappings implements Datapath.
func (k *Kernel) Mappings(ctx context.Context) ([]Mapping, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.mappings(ctx)
}

// Counters implements Datapath. Packet counts come from the rules' own
// counters; drops are not counted by ip6t_NPT.
func (k *Kernel) Counters(ctx context.Context) ([]Counters, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	rules, err := k.list(ctx)
	if err != nil {
		return nil, err
	}
	byMapping := map[Mapping]*Counters{}
	var order []Mapping
	for _, r := range rules {
		if !r.ok {
			continue
		}
		c := byMapping[r.mapping]
		if c == nil {
			c = &Counters{Mapping: r.mapping}
			byMapping[r.mapping] = c
			order = append(order, r.mapping)
		}
		if r.chain == chainPost {
			c.OutPackets, c.OutBytes = r.packets, r.bytes
		} else {
			c.InPackets, c.InBytes = r.packets, r.bytes
		}
	}
	var out []Counters
	for _, m := range sortMappings(order) {
		out = append(out, *byMapping[m])
	}
	return out, nil
}

// Close implements Datapath. The rules stay in the kernel.
func (k *Kernel) Close() error { return nil }

// Purge implements Datapath: it removes the jumps and both chains.
func (k *Kernel) Purge(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	have, err := k.chains(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range []struct{ chain, hook string }{{chainPre, "PREROUTING"}, {chainPost, "POSTROUTING"}} {
		for {
			if _, err := k.run(ctx, "-C", c.hook, "-j", c.chain); err != nil {
				break
			}
			if _, err := k.run(ctx, "-D", c.hook, "-j", c.chain); err != nil {
				errs = append(errs, err)
				break
			}
		}
		if !have[c.chain] {
			continue
		}
		if _, err := k.run(ctx, "-F", c.chain); err != nil {
			errs = append(errs, err)
		}
		if _, err := k.run(ctx, "-X", c.chain); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
