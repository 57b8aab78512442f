package nptv6

import (
	"testing"

	"github.com/multihomed/multihomed/nptv6/internal/lab"
)

func ebpfBackend() backend {
	return backend{name: "ebpf", new: func(t *testing.T, _ *lab.Topology) Datapath { t.Skip("not yet"); return nil }}
}
