package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"text/tabwriter"

	"github.com/multihomed/multihomed/nptv6"
)

const usage = `usage:
  nptv6ctl [flags] list
  nptv6ctl [flags] add INTERFACE INTERNAL EXTERNAL [hairpin]
  nptv6ctl [flags] remove INTERFACE INTERNAL EXTERNAL
  nptv6ctl [flags] purge
  nptv6ctl translate INTERNAL EXTERNAL ADDRESS
  nptv6ctl bench [-packets N] [-rounds N] [-cpu N] [-configs LIST] [-progstats]

flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "nptv6ctl:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("nptv6ctl", flag.ContinueOnError)
	backend := fs.String("backend", "ebpf", "datapath: ebpf or kernel (ip6tables SNPT/DNPT)")
	pin := fs.String("pin", nptv6.DefaultPinPath, "bpffs directory of the eBPF backend")
	netns := fs.String("netns", "", "network namespace file (e.g. /run/netns/edge); empty: this one")
	ip6tables := fs.String("ip6tables", "ip6tables", "ip6tables program of the kernel backend")
	forceTC := fs.Bool("tc", false, "eBPF: attach with a tc filter even where TCX is available")
	verbose := fs.Bool("v", false, "log what changes")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		fs.Usage()
		return errors.New("no command")
	}
	switch args[0] {
	case "translate":
		return translate(args[1:])
	case "bench":
		return bench(ctx, args[1:])
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	var dp nptv6.Datapath
	var err error
	switch *backend {
	case "ebpf":
		dp, err = nptv6.NewEBPF(nptv6.EBPFOptions{PinPath: *pin, NetNS: *netns, ForceTC: *forceTC, Logger: log})
	case "kernel":
		dp, err = nptv6.NewKernel(nptv6.KernelOptions{Command: *ip6tables, NetNS: *netns, Logger: log})
	default:
		return fmt.Errorf("-backend %q: use ebpf or kernel", *backend)
	}
	if err != nil {
		return err
	}
	defer dp.Close()

	switch args[0] {
	case "list":
		return list(ctx, dp)
	case "add", "remove":
		m, err := parseMapping(args[1:])
		if err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		cur, err := dp.Mappings(ctx)
		if err != nil {
			return err
		}
		same := func(x nptv6.Mapping) bool {
			return x.Interface == m.Interface && x.Internal == m.Internal && x.External == m.External
		}
		if args[0] == "add" {
			cur = slices.DeleteFunc(cur, same) // re-adding changes the hairpin flag
			cur = append(cur, m)
		} else {
			n := len(cur)
			cur = slices.DeleteFunc(cur, same)
			if len(cur) == n {
				return fmt.Errorf("remove: no mapping %s is in place; see 'nptv6ctl list'", m)
			}
		}
		got, err := dp.Set(ctx, cur)
		if err != nil {
			return fmt.Errorf("%s: %w (in place now: %v)", args[0], err, got)
		}
		return list(ctx, dp)
	case "purge":
		return dp.Purge(ctx)
	}
	fs.Usage()
	return fmt.Errorf("unknown command %q", args[0])
}

func parseMapping(args []string) (nptv6.Mapping, error) {
	if len(args) < 3 || len(args) > 4 || (len(args) == 4 && args[3] != "hairpin") {
		return nptv6.Mapping{}, errors.New("want INTERFACE INTERNAL EXTERNAL [hairpin], e.g. isp-a fd7a:5e1d:9c00::/48 2001:db8:1001::/48")
	}
	in, err := netip.ParsePrefix(args[1])
	if err != nil {
		return nptv6.Mapping{}, fmt.Errorf("internal prefix %q: %w", args[1], err)
	}
	ex, err := netip.ParsePrefix(args[2])
	if err != nil {
		return nptv6.Mapping{}, fmt.Errorf("external prefix %q: %w", args[2], err)
	}
	m := nptv6.Mapping{Interface: args[0], Internal: in, External: ex, Hairpin: len(args) == 4}
	if _, err := nptv6.NewTranslator(m); err != nil {
		return nptv6.Mapping{}, err
	}
	return m, nil
}

func list(ctx context.Context, dp nptv6.Datapath) error {
	cs, err := dp.Counters(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "INTERFACE\tINTERNAL\tEXTERNAL\tHAIRPIN\tOUT PKTS\tIN PKTS\tOUT DROPS\tIN DROPS\tHAIRPINNED")
	for _, c := range cs {
		m := c.Mapping
		fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%d\t%d\t%d\t%d\t%d\n", m.Interface, m.Internal, m.External, m.Hairpin,
			c.OutPackets, c.InPackets, c.OutDrops, c.InDrops, c.Hairpinned)
	}
	return w.Flush()
}

func translate(args []string) error {
	if len(args) != 3 {
		return errors.New("translate: want INTERNAL EXTERNAL ADDRESS, e.g. fd01:203:405::/48 2001:db8:1::/48 fd01:203:405:1::1234")
	}
	in, err1 := netip.ParsePrefix(args[0])
	ex, err2 := netip.ParsePrefix(args[1])
	a, err3 := netip.ParseAddr(args[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("translate: %w", err)
	}
	t, err := nptv6.NewTranslator(nptv6.Mapping{Internal: in, External: ex})
	if err != nil {
		return err
	}
	fmt.Printf("adjustment 0x%04x\n", t.Adjustment())
	switch {
	case t.Internal().Contains(a):
		out, err := t.Outbound(a)
		if err != nil {
			return err
		}
		fmt.Printf("outbound %s -> %s\n", a, out)
	case t.External().Contains(a):
		out, err := t.Inbound(a)
		if err != nil {
			return err
		}
		fmt.Printf("inbound %s -> %s\n", a, out)
	default:
		return fmt.Errorf("translate: %s is in neither %s nor %s", a, t.Internal(), t.External())
	}
	return nil
}
