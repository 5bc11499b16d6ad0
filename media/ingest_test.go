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

// TestIngestAfterEnd: a packet a socket reader hands over after the
// track's ReadLoop returned is released and dropped: the history, already
// released, keeps nothing.
func TestIngestAfterEnd(t *testing.T) {
	ws := []*recordWriter{{}}
	f := newForwardFixture(t, 1, func(int) webrtc.TrackLocalWriter { return ws[0] })
	f.up.end()
	pkt := bufpool.Get()
	pkt.Retain() // the test's, to see the track's released
	n := copy(pkt.Buf(), inPacket(t, testInSSRC, 1, 480))
	f.up.Ingest(pkt, n)
	f.checkReleased(t, []*bufpool.Packet{pkt})
	if p := f.up.hist.get(1); p != nil {
		p.Release()
		t.Error("the history kept a packet ingested after the end")
	}
	if got := len(ws[0].take()); got != 0 {
		t.Errorf("the subscriber got %d packets after the end", got)
	}
}
