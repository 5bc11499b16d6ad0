package media

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// copyTap keeps a copy of the last payload it got, without allocating (as
// a mixer's input copies into its own buffer).
type copyTap struct {
	buf   [bufpool.Size]byte
	n     int
	seq   uint16
	ts    uint32
	calls int
}

func (c *copyTap) WriteRTP(seq uint16, ts uint32, payload []byte) {
	c.n = copy(c.buf[:], payload)
	c.seq, c.ts = seq, ts
	c.calls++
}

func (c *copyTap) last() []byte { return c.buf[:c.n] }

// TestTap: a tap gets every forwarded packet's payload without header
// extension, CSRCs and padding, with the publisher's sequence number and
// timestamp; nothing while the track is muted or once removed.
func TestTap(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*rtp.Packet)
	}{
		{name: "extension", mutate: func(*rtp.Packet) {}},
		{name: "CSRCs", mutate: func(p *rtp.Packet) { p.CSRC = []uint32{7, 8} }},
		{name: "padding", mutate: func(p *rtp.Packet) { p.Padding, p.Header.PaddingSize = true, 4 }},
		{name: "padding only", mutate: func(p *rtp.Packet) { p.Padding, p.Header.PaddingSize, p.Payload = true, 4, nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &recordWriter{}
			f := newForwardFixture(t, 1, func(int) webrtc.TrackLocalWriter { return w })
			tap := &copyTap{}
			f.up.AddTap(tap)
			raw := inPacket(t, testInSSRC, 77, 9600, tt.mutate)
			var p rtp.Packet
			if err := p.Unmarshal(raw); err != nil {
				t.Fatal(err)
			}
			f.send(raw)
			if tap.calls != 1 || tap.seq != 77 || tap.ts != 9600 {
				t.Fatalf("tap: %d calls, seq %d ts %d; want 1 call, seq 77 ts 9600", tap.calls, tap.seq, tap.ts)
			}
			if !bytes.Equal(tap.last(), p.Payload) {
				t.Errorf("tap payload % x, want % x", tap.last(), p.Payload)
			}
			if got := w.take(); len(got) != 1 {
				t.Errorf("the subscriber got %d packets, want 1: a tap does not replace the fan-out", len(got))
			}
		})
	}
	t.Run("muted and removed", func(t *testing.T) {
		f := newForwardFixture(t, 1, func(int) webrtc.TrackLocalWriter { return discardWriter{} })
		tap := &copyTap{}
		f.up.AddTap(tap)
		f.up.SetMuted(true)
		f.send(inPacket(t, testInSSRC, 1, 0))
		if tap.calls != 0 {
			t.Errorf("a muted track's packet reached the tap")
		}
		f.up.SetMuted(false)
		f.send(inPacket(t, testInSSRC, 2, testFrameTS))
		f.up.RemoveTap(tap)
		f.send(inPacket(t, testInSSRC, 3, 2*testFrameTS))
		if tap.calls != 1 || tap.seq != 2 {
			t.Errorf("tap: %d calls, last seq %d; want exactly the unmuted packet 2 before the removal", tap.calls, tap.seq)
		}
	})
}

// TestForwardLocal: packets the relay makes itself (the mix) go through
// Forward to every subscriber with the header rewritten, serve NACKs from
// the history, and are not counted as received from publishers.
func TestForwardLocal(t *testing.T) {
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	up := NewUpTrack(UpTrackParams{ID: "t_mix", Kind: "audio", StreamID: "mix", Local: true, Metrics: m})
	var ws []*recordWriter
	for i := range 2 {
		w := &recordWriter{}
		ws = append(ws, w)
		d := NewDownTrack(up, DownTrackParams{})
		d.bound.Store(&binding{ssrc: testOutSSRC + uint32(i), pt: testOutPT, w: w})
		if !up.addSubscriber(d) {
			t.Fatal("addSubscriber refused on a live track")
		}
	}
	var sent []*bufpool.Packet
	for i := range 3 {
		pkt := bufpool.Get()
		pkt.Retain() // the test's, to check the release below
		n := copy(pkt.Buf(), inPacket(t, 0x1234, uint16(500+i), uint32(i*testFrameTS), func(p *rtp.Packet) {
			p.Extension, p.Extensions = false, nil
		}))
		up.Forward(pkt, n)
		sent = append(sent, pkt)
	}
	for i, w := range ws {
		got := w.take()
		if len(got) != 3 {
			t.Fatalf("subscriber %d got %d packets, want 3", i, len(got))
		}
		if got[0].hdr.SSRC != testOutSSRC+uint32(i) || got[2].hdr.SequenceNumber != got[0].hdr.SequenceNumber+2 {
			t.Errorf("subscriber %d: ssrc %#x, seq %d..%d; want its own ssrc and continuous numbers",
				i, got[0].hdr.SSRC, got[0].hdr.SequenceNumber, got[2].hdr.SequenceNumber)
		}
	}
	if pkt := up.hist.get(501); pkt == nil {
		t.Error("a forwarded local packet is not in the NACK history")
	} else {
		pkt.Release()
	}
	if got := counterValue(t, m.PacketsIn); got != 0 {
		t.Errorf("PacketsIn = %v, want 0: local packets are not received from publishers", got)
	}
	if got := counterValue(t, m.PacketsOut); got != 6 {
		t.Errorf("PacketsOut = %v, want 6", got)
	}
	up.Close()
	up.ReleaseHistory()
	for i, p := range sent {
		p.Release()
		assertFreed(t, p, fmt.Sprintf("local packet %d", i))
	}
}
