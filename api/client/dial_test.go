package client

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestDialErrors: the two kinds of failure a CLI maps to different exit
// codes are told apart.
func TestDialErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		o    Options
		want error
	}{
		{"no socket", Options{Socket: filepath.Join(dir, "absent.sock")}, ErrUnreachable},
		{"tcp without CA", Options{Address: "192.0.2.1:50051"}, ErrUsage},
		{"unreadable CA", Options{Address: "192.0.2.1:50051", CACert: filepath.Join(dir, "absent.pem")}, ErrUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, err := Dial(tc.o)
			if cc != nil {
				cc.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Dial: %v; want %v", err, tc.want)
			}
		})
	}
}
