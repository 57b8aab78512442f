package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

// runPA is `mhlab pa`: the PA-mode demo. Names resolve to both ISPs'
// translations; ISP-A's link is cut; the name resolves via ISP-B only and
// the LAN host's new flows leave from ISP-B's PA prefix; ISP-A comes back.
func runPA(ctx context.Context, daemonPath, backend string, verbose bool) error {
	abs, err := rootDaemon(daemonPath)
	if err != nil {
		return err
	}
	l, down, err := upLab(fmt.Sprintf("Building the PA lab: edge (multihomed, no BGP), isp-a and isp-b (FRR) routing %s and %s to the edge statically, transit (FRR), BIND 9 for %s", lab.PAPrefixA, lab.PAPrefixB, lab.PAZone),
		func() (*lab.PALab, error) { return lab.UpPA(ctx, netns.UniqueID()) })
	if err != nil {
		return err
	}
	defer down()
	fmt.Println("   namespaces:", l.Describe(), "dns="+l.DNS.Name)
	dir, err := os.MkdirTemp("", "mhlab-pa-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	key, pin, unmount, err := startPADNS(ctx, l, dir, backend)
	if err != nil {
		return err
	}
	defer unmount()
	cfgText := lab.PAEdgeConfig(lab.ProfileFast, backend, pin, key, filepath.Join(dir, "state")) + fmt.Sprintf("api:\n  socket: %s\n", filepath.Join(dir, "api.sock"))
	step("Starting multihomed in %s with this config:", l.Edge.Name)
	fmt.Print(indent(cfgText))
	d, err := startDaemon(ctx, l.Edge, abs, filepath.Join(dir, "multihomed.yaml"), cfgText, echoTo(verbose))
	if err != nil {
		return err
	}
	defer stopDaemon(d)
	sink, err := lab.StartSourceSink(l.Inet, lab.InetAddr6, 9999)
	if err != nil {
		return err
	}
	defer sink.Close()
	stopServe, err := lab.ServeGreeting(l.LAN, lab.PAWWW, 8080, "hello from www")
	if err != nil {
		return err
	}
	defer stopServe()

	show := func(what string, want int) error {
		start := time.Now()
		var addrs []netip.Addr
		for {
			addrs, err = l.Resolve(ctx)
			if err == nil && len(addrs) == want {
				break
			}
			if time.Since(start) > 60*time.Second || ctx.Err() != nil {
				return fmt.Errorf("%s: the server answers %v (%v)", what, addrs, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		fmt.Printf("   dig @%s %s AAAA (from the internet host), %s after the change:\n", lab.DNSServerAddr6, lab.PAName, time.Since(start).Round(time.Millisecond))
		for _, a := range addrs {
			fmt.Printf("     %s\n", a)
		}
		tag := fmt.Sprintf("demo-%d", time.Now().UnixNano())
		s, err := lab.StartSender(l.LAN, lab.PALANAddr6, netip.AddrPortFrom(lab.InetAddr6, 9999), tag, 20*time.Millisecond)
		if err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
		s.Stop()
		src, _ := sink.Last(tag)
		fmt.Printf("   a new flow from the LAN host (%s) reaches the internet host from %s\n", lab.PALANAddr6, src)
		// Each address on its own: replies leave through the ISP the
		// connection came in by, whichever carries egress (returnpath).
		for _, a := range addrs {
			if _, err := lab.DialGreeting(l.Inet, []netip.Addr{a}, 8080, "hello from www", 2*time.Second); err != nil {
				return fmt.Errorf("%s: TCP from the internet host to %s: %w", what, a, err)
			}
			fmt.Printf("   TCP from the internet host to %s (%s): connected\n", a, lab.PAName)
		}
		return nil
	}

	step("Waiting for the first verdicts and the DNS update: %s should resolve to its translation into both PA prefixes", lab.PAName)
	if err := show("both ISPs", 2); err != nil {
		return err
	}
	step("Cutting ISP-A's link (ip link set eth-a down in the edge)")
	if err := l.CutISPA(ctx); err != nil {
		return err
	}
	if err := show("ISP-A cut", 1); err != nil {
		return err
	}
	step("Restoring ISP-A's link")
	if err := l.RestoreISPA(ctx); err != nil {
		return err
	}
	if err := show("ISP-A back", 2); err != nil {
		return err
	}
	step("Demo complete")
	return nil
}
