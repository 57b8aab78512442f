package lab

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
)

// BINDZone is one zone a lab BIND serves as primary.
type BINDZone struct {
	// Name such as "site.example".
	Name string
	// Dynamic grants the lab key updates of AAAA records under the zone
	// (BIND update-policy "zonesub AAAA"); a zone that is not dynamic
	// refuses every update.
	Dynamic bool
}

// BINDConfig describes a lab BIND 9 (Debian bind9) primary.
type BINDConfig struct {
	// NS runs named inside that namespace; nil runs it in the caller's
	// namespace, which is only safe on a loopback address.
	NS *netns.NS
	// Listen is where named answers (UDP and TCP). Port 0 picks a free port
	// (only when NS is nil).
	Listen netip.AddrPort
	// KeyName and Secret are the lab's hmac-sha256 TSIG key.
	KeyName string
	Secret  []byte
	// Zones served as primary. Each gets an SOA and an NS record; hosts are
	// added by updates.
	Zones []BINDZone
	// Dir holds named.conf, the zone files and their journals. Starting a
	// second BIND on the same Dir keeps what updates wrote (a restart);
	// empty uses a new temporary directory removed by Close.
	Dir string
}

// BIND is a running named. Close stops it.
type BIND struct {
	// Addr is where it answers.
	Addr netip.AddrPort
	// Dir is its directory (config, zones, named.log).
	Dir string

	cmd     *exec.Cmd
	done    chan struct{}
	tempDir bool
}

// StartBIND writes the config and zone files (zone files only when absent,
// so journals survive a restart), starts named in the foreground and waits
// until it answers for every zone.
func StartBIND(ctx context.Context, c BINDConfig) (*BIND, error) {
	if _, err := exec.LookPath("named"); err != nil {
		return nil, errors.New("lab: named not found; install Debian package bind9")
	}
	b := &BIND{Dir: c.Dir, done: make(chan struct{})}
	if b.Dir == "" {
		d, err := os.MkdirTemp("", "mh-bind-")
		if err != nil {
			return nil, fmt.Errorf("lab: bind: %w", err)
		}
		b.Dir, b.tempDir = d, true
	}
	addr := c.Listen
	if addr.Port() == 0 {
		if c.NS != nil {
			return nil, errors.New("lab: bind: give a port when running in a namespace")
		}
		p, err := freePort(addr.Addr())
		if err != nil {
			return nil, err
		}
		addr = netip.AddrPortFrom(addr.Addr(), p)
	}
	b.Addr = addr
	if err := writeBINDFiles(b.Dir, addr, c); err != nil {
		b.removeTemp()
		return nil, err
	}
	args := []string{"named", "-g", "-n", "1", "-c", filepath.Join(b.Dir, "named.conf")}
	if addr.Addr().Is4() {
		args = append(args, "-4")
	} else {
		args = append(args, "-6")
	}
	if c.NS != nil {
		b.cmd = c.NS.Command(context.Background(), args...)
	} else {
		b.cmd = exec.Command(args[0], args[1:]...)
	}
	logf, err := os.Create(filepath.Join(b.Dir, "named.log"))
	if err != nil {
		b.removeTemp()
		return nil, fmt.Errorf("lab: bind: %w", err)
	}
	defer logf.Close()
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		b.removeTemp()
		return nil, fmt.Errorf("lab: start named: %w", err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()

	deadline := time.Now().Add(15 * time.Second)
	for _, z := range c.Zones {
		for !b.answers(ctx, c.NS, z.Name) {
			select {
			case <-b.done:
				log, _ := os.ReadFile(filepath.Join(b.Dir, "named.log"))
				b.Close()
				return nil, fmt.Errorf("lab: named exited at start: %s", tail(log, 1500))
			default:
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				log, _ := os.ReadFile(filepath.Join(b.Dir, "named.log"))
				b.Close()
				return nil, fmt.Errorf("lab: named does not answer for %s at %s: %s", z.Name, addr, tail(log, 1500))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return b, nil
}

// answers reports whether named gives an SOA answer for zone.
func (b *BIND) answers(ctx context.Context, ns *netns.NS, zone string) bool {
	out, err := b.Dig(ctx, ns, zone, "SOA")
	return err == nil && len(bytes.TrimSpace(out)) > 0
}

// Dig asks the server for name's records of type typ (without recursion)
// and returns dig's short output: one record's data a line. ns is where dig
// runs (nil: here).
func (b *BIND) Dig(ctx context.Context, ns *netns.NS, name, typ string) ([]byte, error) {
	args := []string{"dig", "+short", "+norecurse", "+time=1", "+tries=1", "-p", strconv.Itoa(int(b.Addr.Port())), "@" + b.Addr.Addr().String(), name, typ}
	if ns != nil {
		return ns.Run(ctx, args...)
	}
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).Output()
	if err != nil {
		return out, fmt.Errorf("lab: %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// Close stops named (SIGTERM, then SIGKILL after 5s) and removes its
// directory if StartBIND made it. It is safe to call more than once.
func (b *BIND) Close() {
	if b.cmd != nil && b.cmd.Process != nil {
		stopProcess(b.cmd.Process, b.done, 5*time.Second)
	}
	b.removeTemp()
}

func (b *BIND) removeTemp() {
	if b.tempDir {
		_ = os.RemoveAll(b.Dir)
		b.tempDir = false
	}
}

func writeBINDFiles(dir string, addr netip.AddrPort, c BINDConfig) error {
	listen := fmt.Sprintf("listen-on port %d { %s; };\n\tlisten-on-v6 { none; };", addr.Port(), addr.Addr())
	if addr.Addr().Is6() {
		listen = fmt.Sprintf("listen-on { none; };\n\tlisten-on-v6 port %d { %s; };", addr.Port(), addr.Addr())
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, `options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	%[2]s
	recursion no;
	allow-query { any; };
	allow-transfer { none; };
	notify no;
	dnssec-validation no;
};
controls { };
key "%[3]s" {
	algorithm hmac-sha256;
	secret "%[4]s";
};
`, dir, listen, c.KeyName, base64.StdEncoding.EncodeToString(c.Secret))
	for _, z := range c.Zones {
		file := "db." + z.Name
		fmt.Fprintf(&conf, "zone %q {\n\ttype primary;\n\tfile %q;\n", z.Name, file)
		if z.Dynamic {
			fmt.Fprintf(&conf, "\tupdate-policy { grant %q zonesub AAAA; };\n", c.KeyName)
		}
		conf.WriteString("};\n")
		path := filepath.Join(dir, file)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		// The NS target's address is from the documentation range: nothing
		// ever resolves it to send traffic.
		zone := fmt.Sprintf("$TTL 300\n@ IN SOA ns.%[1]s. hostmaster.%[1]s. 1 3600 600 86400 30\n@ IN NS ns.%[1]s.\nns IN AAAA 2001:db8::53\n", z.Name)
		if err := os.WriteFile(path, []byte(zone), 0o644); err != nil {
			return fmt.Errorf("lab: bind: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "named.conf"), []byte(conf.String()), 0o644); err != nil {
		return fmt.Errorf("lab: bind: %w", err)
	}
	return nil
}

// freePort finds a port free for both TCP and UDP on addr. Another process
// may take it before named binds; StartBIND then fails with named's log.
func freePort(addr netip.Addr) (uint16, error) {
	for range 20 {
		l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		if err != nil {
			return 0, fmt.Errorf("lab: bind: find a free port on %s: %w", addr, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", netip.AddrPortFrom(addr, uint16(port)).String())
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			return uint16(port), nil
		}
	}
	return 0, fmt.Errorf("lab: bind: no port free for both TCP and UDP on %s", addr)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}
