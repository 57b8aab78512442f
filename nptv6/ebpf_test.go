package nptv6

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/multihomed/multihomed/internal/lab"
)

// bpffs mounts a private bpffs for one test and unmounts it at the end, so
// tests never touch the host's /sys/fs/bpf and never see each other's pins.
func bpffs(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nptv6-bpffs-")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		os.Remove(dir)
		t.Fatalf("mount bpffs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
		os.Remove(dir)
	})
	return dir
}

// ebpfBackend builds the eBPF datapath for a topology's edge, pinned in a
// bpffs of its own.
func ebpfBackend() backend { return ebpfBackendMode("ebpf", false) }

func ebpfBackendMode(name string, forceTC bool) backend {
	return backend{name: name, new: func(t *testing.T, topo *lab.Translator) Datapath {
		pin := filepath.Join(bpffs(t), "nptv6")
		e, err := NewEBPF(EBPFOptions{PinPath: pin, NetNS: topo.Edge.Path(), ForceTC: forceTC})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := e.Purge(context.Background()); err != nil {
				t.Errorf("purge: %v", err)
			}
			e.Close()
		})
		return e
	}}
}

// TestEBPFLayer3Uplink: an uplink without an Ethernet header (a tun device,
// like PPP or a tunnel) gets the layer-3 instance of the programs. The test
// plays the ISP at the other end of the tun: it reads the translated packet
// and writes the reply, which must reach the LAN host.
func TestEBPFLayer3Uplink(t *testing.T) {
	requirePrivileged(t)
	topo := newTopology(t)
	ctx := context.Background()
	tunName := "nt" + topo.ID
	var tun *os.File
	inNS(t, topo.Edge, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		var req [unix.IFNAMSIZ + 64]byte
		copy(req[:], tunName)
		binary.NativeEndian.PutUint16(req[unix.IFNAMSIZ:], unix.IFF_TUN|unix.IFF_NO_PI)
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req[0]))); errno != 0 {
			unix.Close(fd)
			return errno
		}
		tun = os.NewFile(uintptr(fd), "tun")
		return nil
	})
	t.Cleanup(func() { tun.Close() })
	for _, c := range [][]string{
		{"ip", "link", "set", tunName, "up"},
		{"ip", "-6", "route", "replace", "default", "dev", tunName},
	} {
		if _, err := topo.Edge.Run(ctx, c...); err != nil {
			t.Fatal(err)
		}
	}
	dp := ebpfBackend().new(t, topo)
	ms := []Mapping{{Interface: tunName, Internal: lab.NPTInternal, External: lab.NPTPA}}
	setOrFatal(t, dp, ms)
	tr, _ := NewTranslator(ms[0])
	ext, _ := tr.Outbound(lab.NPTLANHost)

	cli := lanClient(t, topo, 7400)
	defer cli.Close()
	deadline := time.Now().Add(ioTimeout)
	cli.SetDeadline(deadline)
	tun.SetDeadline(deadline)
	if _, err := cli.Write([]byte("over tun")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2000)
	var pkt []byte
	for {
		n, err := tun.Read(buf)
		if err != nil {
			t.Fatalf("tun: no packet from the LAN host: %v", err)
		}
		if n > 48 && buf[6] == protoUDP && string(buf[48:n]) == "over tun" {
			pkt = buf[:n]
			break
		}
	}
	if got := addrAt(pkt, offSrc); got != ext {
		t.Fatalf("packet left through the tun from %s, want %s", got, ext)
	}
	if !checksumOK(pkt) {
		t.Fatal("UDP checksum broken on the layer-3 uplink")
	}
	// The reply: swap addresses and ports, recompute the checksum.
	u := make([]byte, 8+len("reply"))
	copy(u[0:2], pkt[42:44])
	copy(u[2:4], pkt[40:42])
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], "reply")
	reply := ipv6Packet(lab.NPTOutHost, ext, protoUDP, u, 6)
	if _, err := tun.Write(reply); err != nil {
		t.Fatal(err)
	}
	n, err := cli.Read(buf)
	if err != nil || string(buf[:n]) != "reply" {
		t.Fatalf("LAN host: %q, %v; want the reply through the layer-3 uplink", buf[:n], err)
	}
}
