package bgp

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/routing"
)

// TestAnnouncementSequences drives the speaker through a random (seeded)
// sequence of announcement changes toward two ISPs, switching at random
// between the two ways of applying them (in place, re-originated;
// exportmarks.go), and checks after each step that each ISP holds exactly
// what it was last told: the prepend, GRACEFUL_SHUTDOWN, or nothing. A
// withdrawal GoBGP failed to send, a mark left live, a statement applied to
// the wrong uplink or a mark leaking to an ISP all show as a mismatch.
func TestAnnouncementSequences(t *testing.T) {
	port := freePort(t)
	peerA := startTestPeer(t, "127.0.0.2", port, 64501, nil)
	peerB := startTestPeer(t, "127.0.0.3", port, 64502, nil)
	cfg := loopbackConfig(t)
	sp := startSpeaker(t, port, cfg)
	ctx := context.Background()
	site := cfg.Site.Prefixes[0]
	_, err := sp.SetAnnouncements(ctx, BaseAnnouncements(cfg))
	must(t, err)
	eventually(t, "both sessions established", 20*time.Second, func() (bool, string) {
		ss := sp.Sessions()
		return len(ss) == 2 && ss[0].Established() && ss[1].Established(), fmt.Sprint(ss)
	})

	// want writes what an ISP holds for one announcement as
	// testPeer.received does; "" is nothing.
	want := func(a *routing.Announcement) string {
		if a == nil {
			return ""
		}
		parts := []string{"aspath=" + strings.TrimSpace(strings.Repeat("64500 ", int(a.Prepend)+1))}
		var comms []string
		for _, c := range a.Communities {
			comms = append(comms, c.String())
		}
		if a.GracefulShutdown {
			comms = append(comms, routing.CommunityGracefulShutdown.String())
		}
		if len(comms) > 0 {
			parts = append(parts, "comm="+strings.Join(comms, ","))
		}
		var large []string
		for _, c := range a.LargeCommunities {
			large = append(large, c.String())
		}
		if len(large) > 0 {
			parts = append(parts, "large="+strings.Join(large, ","))
		}
		if a.MED != nil {
			parts = append(parts, fmt.Sprintf("med=%d", *a.MED))
		}
		return strings.Join(parts, " ")
	}
	held := func(p *testPeer) string {
		attrs, ok := p.receivedPrefix(t, site)
		if !ok {
			return ""
		}
		return attrs
	}

	rng := rand.New(rand.NewPCG(18, 2026))
	steps, inPlace, reoriginated := 40, 0, 0
	for i := range steps {
		anns := BaseAnnouncements(cfg)
		expect := map[string]*routing.Announcement{}
		for _, u := range []string{"isp-a", "isp-b"} {
			if rng.IntN(4) == 0 {
				delete(anns, u)
				continue
			}
			a := &anns[u][0]
			a.Prepend = uint8(rng.IntN(4))
			a.GracefulShutdown = rng.IntN(3) == 0
			expect[u] = a
		}
		if rng.IntN(2) == 0 {
			sp.inPlaceMax, inPlace = math.MaxUint64, inPlace+1
		} else {
			sp.inPlaceMax, reoriginated = 0, reoriginated+1
		}
		_, err := sp.SetAnnouncements(ctx, anns)
		must(t, err)
		wa, wb := want(expect["isp-a"]), want(expect["isp-b"])
		eventually(t, fmt.Sprintf("step %d (in place: %v): A holds %q, B %q", i, sp.inPlaceMax > 0, wa, wb), 10*time.Second, func() (bool, string) {
			a, b := held(peerA), held(peerB)
			return a == wa && b == wb, fmt.Sprintf("A holds %q, B %q", a, b)
		})
	}
	if inPlace == 0 || reoriginated == 0 {
		t.Fatalf("%d steps in place and %d re-originated: the sequence did not try both ways", inPlace, reoriginated)
	}
	// The export policy keeps only what the paths need: a live mark per
	// announcement, nothing left over from the steps.
	st := sp.exportStateLocked()
	if live, wantLive := len(st.marks), len(sp.Announced()); live != wantLive {
		t.Errorf("the policy holds %d marks after the sequence; want %d, one per announcing uplink", live, wantLive)
	}
}
