package nptv6

//go:generate ./bpf/generate.sh

import (
	"errors"
	"log/slog"
	"sync"
)

// DefaultPinPath is where the eBPF backend pins its programs, maps and
// links unless told otherwise. It must be on a bpffs mount.
const DefaultPinPath = "/sys/fs/bpf/multihomed/nptv6"

// EBPFOptions configure the eBPF backend.
type EBPFOptions struct {
	// PinPath is the bpffs directory holding the pinned maps, programs and
	// links; DefaultPinPath if empty. One directory per translator instance.
	PinPath string
	// NetNS is the path of the network namespace holding the uplinks, such
	// as /run/netns/edge. Empty means the process's own namespace.
	NetNS string
	// ForceTC attaches with a netlink tc filter (clsact + cls_bpf) even
	// where TCX (kernel 6.6+) is available.
	ForceTC bool
	// Logger receives attach, detach and mapping changes. Nil discards.
	Logger *slog.Logger
}

// EBPF is the Datapath that runs the translator as eBPF programs on the
// tc hooks of each uplink: npt_egress translates sources on egress,
// npt_ingress destinations on ingress. Programs attach with TCX where the
// kernel has it (6.6+) and with a cls_bpf filter otherwise.
//
// Mappings live in pinned BPF maps (LPM tries keyed by interface and
// prefix); each entry is replaced in one map update, so a packet sees either
// the old or the new mapping, never a mix. Maps, programs and TCX links stay
// pinned when the process exits, and a new process adopts them: NewEBPF
// reuses the pinned maps, and Set swaps the new program into the existing
// attachment in place.
type EBPF struct {
	opts EBPFOptions
	log  *slog.Logger
	// mu serialises Set, Purge and Close.
	mu sync.Mutex
	// objs holds the programs for Ethernet devices and the (shared, pinned)
	// maps; objsL3 the programs for devices without a link-layer header.
	objs, objsL3 nptObjects
}

var _ Datapath = (*EBPF)(nil)

// Close implements Datapath: it closes this process's handles. Pinned
// objects stay and translation goes on.
func (e *EBPF) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return errors.Join(e.objs.Close(), e.objsL3.Close())
}
