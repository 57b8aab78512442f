package fib

// lastApplied remembers the wanted state the last Set applied without
// error and the state it read back afterwards, so that a Set asking for
// the same again can skip the kernel: the controller calls Set on every
// pass, and most passes (a probe verdict flapping between up and degraded)
// change nothing here. It trusts the kernel to keep what it was given,
// which holds until a link changes (the kernel drops the routes of a link
// that goes down) or someone else edits our routes: the owner calls
// invalidate for both (a link event, the periodic resync), and after an
// error nothing is remembered.
type lastApplied[W, S any] struct {
	valid bool
	want  W
	got   S
}

// lookup returns the state read back after applying want, if want is what
// was applied last (by equal) and nothing invalidated it since.
func (c *lastApplied[W, S]) lookup(want W, equal func(a, b W) bool) (S, bool) {
	if !c.valid || !equal(c.want, want) {
		var zero S
		return zero, false
	}
	return c.got, true
}

// last returns the state read back by the last Set it remembers.
func (c *lastApplied[W, S]) last() (S, bool) { return c.got, c.valid }

// store remembers want (a copy the caller will not modify) as applied,
// with got read back.
func (c *lastApplied[W, S]) store(want W, got S) {
	c.valid, c.want, c.got = true, want, got
}

// invalidate makes the next lookup miss.
func (c *lastApplied[W, S]) invalidate() {
	var zero lastApplied[W, S]
	*c = zero
}
