package fib

import "github.com/vishvananda/netlink"

// linkCache remembers the links the appliers looked up, by name and by
// index, so that a Set that must run (the egress metric changed with a
// verdict) does not ask the kernel for every device again. A cached link's
// index and carrier go stale when the link changes: its owner forgets the
// cache on Invalidate (which the controller calls on every carrier change
// and every resync) and after any error.
type linkCache struct {
	h       *netlink.Handle
	byName  map[string]netlink.Link
	byIndex map[int]string
}

// link returns the link named name.
func (c *linkCache) link(name string) (netlink.Link, error) {
	if l, ok := c.byName[name]; ok {
		return l, nil
	}
	l, err := c.h.LinkByName(name)
	if err != nil {
		return nil, err
	}
	c.remember(l)
	return l, nil
}

// name returns the name of the link with index; false when there is none.
func (c *linkCache) name(index int) (string, bool) {
	if n, ok := c.byIndex[index]; ok {
		return n, true
	}
	l, err := c.h.LinkByIndex(index)
	if err != nil {
		return "", false
	}
	c.remember(l)
	return l.Attrs().Name, true
}

func (c *linkCache) remember(l netlink.Link) {
	if c.byName == nil {
		c.byName, c.byIndex = map[string]netlink.Link{}, map[int]string{}
	}
	c.byName[l.Attrs().Name] = l
	c.byIndex[l.Attrs().Index] = l.Attrs().Name
}

// forget drops everything remembered.
func (c *linkCache) forget() { c.byName, c.byIndex = nil, nil }
