package lab

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/netns/netnstest"
	"github.com/multihomed/multihomed/internal/testenv"
)

// labNamespaces lists the namespaces named "mh"+id+something, but not
// skip.
func labNamespaces(t *testing.T, id, skip string) []string {
	t.Helper()
	entries, err := os.ReadDir("/var/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "mh"+id) && e.Name() != skip {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestUpRejectsOptionsFirst: options that do not combine fail Up before it
// creates anything (the routers would use them as they start).
func TestUpRejectsOptionsFirst(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"plain B on BIRD", Options{ISPBPlainRoutes: 10}, "ISPBPlainRoutes needs ISPBFRR"},
		{"too many plain", Options{ISPAPlainRoutes: maxPlainRoutes + 1, ISPBFRR: true}, "at most"},
		{"too many shared", Options{ISPAPlainRoutes: maxPlainRoutes, ISPBPlainRoutes: maxPlainRoutes/2 + 1, ISPBFRR: true}, "at most"},
		{"BIRD with plain", Options{BIRDInbound: true, ISPAPlainRoutes: 10}, "BIRDInbound does not combine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.ID = netns.UniqueID()
			l, err := Up(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				if l != nil {
					l.Close()
				}
				t.Fatalf("Up: %v; want an error with %q", err, tc.want)
			}
			if l != nil {
				t.Errorf("Up returned a lab with its error")
			}
			if left := labNamespaces(t, tc.opts.ID, ""); len(left) > 0 {
				t.Errorf("Up left namespaces %v", left)
			}
		})
	}
}

// TestUpFailureRemovesNamespaces: when building a lab fails part-way (here
// its last namespace already exists), the builder returns nil with the
// error and removes every namespace it created.
func TestUpFailureRemovesNamespaces(t *testing.T) {
	testenv.Need(t, "ip")
	for _, tc := range []struct {
		name string
		up   func(*testing.T, Options) error
	}{
		{"single edge", func(t *testing.T, o Options) error { return built[*Lab](t)(Up(context.Background(), o)) }},
		{"two edge", func(t *testing.T, o Options) error { return built[*TwoEdge](t)(UpTwoEdge(context.Background(), o)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := netns.UniqueID()
			// The LAN's namespace comes last in both builders.
			taken := "mh" + id + nodeShort["lan"]
			netnstest.New(t, taken)
			err := tc.up(t, Options{ID: id})
			if err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Fatalf("build: %v; want the error that %s already exists", err, taken)
			}
			if left := labNamespaces(t, id, taken); len(left) > 0 {
				t.Errorf("the failed build left namespaces %v", left)
			}
		})
	}
}

// built returns a check of a builder's results: a lab returned with an
// error fails t; a lab returned at all is closed; the error is passed on.
func built[L interface {
	comparable
	Close()
}](t *testing.T) func(L, error) error {
	return func(l L, err error) error {
		t.Helper()
		var none L
		if l != none {
			l.Close()
			if err != nil {
				t.Errorf("the builder returned a lab with its error %v", err)
			}
		}
		return err
	}
}
