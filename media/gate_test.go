package media

import (
	"testing"

	"github.com/pion/webrtc/v4"
)

// TestGate: a muted gate stops only the down tracks made with it (one
// room's copies of a track published in another); the track's other
// down tracks and its taps go on, and nothing on the way allocates.
func TestGate(t *testing.T) {
	ws := []*recordWriter{{}, {}, {}}
	f := newForwardFixture(t, 1, func(int) webrtc.TrackLocalWriter { return ws[0] })
	g := &Gate{}
	for i := 1; i < 3; i++ {
		d := NewDownTrack(f.up, DownTrackParams{Gate: g})
		d.bound.Store(&binding{ssrc: testOutSSRC + uint32(i), pt: testOutPT, w: ws[i]})
		if !f.up.addSubscriber(d) {
			t.Fatal("addSubscriber refused on a live track")
		}
	}
	tap := &copyTap{}
	f.up.AddTap(tap)
	counts := func() [3]int {
		var n [3]int
		for i, w := range ws {
			n[i] = len(w.take())
		}
		return n
	}

	f.send(inPacket(t, testInSSRC, 1, 0))
	if got := counts(); got != [3]int{1, 1, 1} {
		t.Fatalf("open gate: packets per subscriber %v, want [1 1 1]", got)
	}
	g.SetMuted(true)
	f.send(inPacket(t, testInSSRC, 2, testFrameTS))
	if got := counts(); got != [3]int{1, 0, 0} {
		t.Errorf("muted gate: packets per subscriber %v, want [1 0 0]: only the gated copies stop", got)
	}
	if tap.calls != 2 || f.up.Muted() {
		t.Errorf("muted gate: tap called %d times (want 2), track muted %t (want false)", tap.calls, f.up.Muted())
	}
	g.SetMuted(false)
	f.send(inPacket(t, testInSSRC, 3, 2*testFrameTS))
	if got := counts(); got != [3]int{1, 1, 1} {
		t.Errorf("reopened gate: packets per subscriber %v, want [1 1 1]", got)
	}
	if (*Gate)(nil).Muted() {
		t.Error("a nil gate reads muted")
	}
}

// TestGateZeroAllocs: the forward path stays at 0 allocations with gated
// down tracks, muted or not.
func TestGateZeroAllocs(t *testing.T) {
	for _, muted := range []bool{false, true} {
		m, err := NewMetrics(nil)
		if err != nil {
			t.Fatal(err)
		}
		up := NewUpTrack(UpTrackParams{ID: "t_1", Kind: "audio", StreamID: "p_pub", Metrics: m})
		t.Cleanup(up.hist.clear)
		g := &Gate{}
		g.SetMuted(muted)
		for i := range 4 {
			d := NewDownTrack(up, DownTrackParams{Gate: g})
			d.bound.Store(&binding{ssrc: testOutSSRC + uint32(i), pt: testOutPT, w: discardWriter{}})
			up.addSubscriber(d)
		}
		if allocs := stepAllocs(t, up, 1000); allocs != 0 {
			t.Errorf("gate muted %t: %v allocations per packet, want 0", muted, allocs)
		}
	}
}
