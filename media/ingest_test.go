package media

import (
	"sync"
	"testing"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/webrtc/v4"
)

// TestIngestTwoSources: a publisher's packets handed to Ingest from two
// goroutines at once (pion's track reader and the relay's socket reader
// while one hands over to the other) are each forwarded once to every
// subscriber, counted once, kept in the history and seen by the loss
// statistics; the race detector sees the calls serialized.
func TestIngestTwoSources(t *testing.T) {
	const perSource = 200
	ws := make([]*recordWriter, 2)
	f := newForwardFixture(t, 2, func(i int) webrtc.TrackLocalWriter {
		ws[i] = &recordWriter{}
		return ws[i]
	})
	f.up.rx = newReceiveStats(48000)
	var wg sync.WaitGroup
	for src := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSource {
				seq := uint16(2*i + src) // the sources interleave
				raw := inPacket(t, testInSSRC, seq, uint32(seq)*testFrameTS)
				pkt := bufpool.Get()
				n := copy(pkt.Buf(), raw)
				f.up.Ingest(pkt, n)
			}
		}()
	}
	wg.Wait()
	if got := counterValue(t, f.m.PacketsIn); got != 2*perSource {
		t.Errorf("PacketsIn = %v, want %d", got, 2*perSource)
	}
	for i, w := range ws {
		seen := map[uint16]int{}
		for _, p := range w.take() {
			seen[p.hdr.SequenceNumber]++
		}
		if len(seen) != 2*perSource {
			t.Errorf("subscriber %d got %d distinct packets, want %d", i, len(seen), 2*perSource)
		}
		for seq, n := range seen {
			if n != 1 {
				t.Errorf("subscriber %d got sequence number %d %d times, want once", i, seq, n)
			}
		}
	}
	f.up.rx.mu.Lock()
	received := f.up.rx.received
	f.up.rx.mu.Unlock()
	if received != 2*perSource {
		t.Errorf("the loss statistics counted %d packets, want %d", received, 2*perSource)
	}
	last := uint16(2*perSource - 1)
	if p := f.up.hist.get(last); p == nil {
		t.Errorf("the history lacks the last packet, %d", last)
	} else {
		p.Release()
	}
}
