package health

import "errors"

// NewProber builds the real prober of target t on uplink u.
func NewProber(u Uplink, t Target) (Prober, error) {
	return nil, errors.New("health: probers not implemented yet")
}
