package signaling_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// lossy is a ReceiveInterceptor that simulates loss on a sub connection:
// it drops one in every `every` RTP packets on their first arrival, at a
// random place in each run of `every` (so exactly 1/every of them, which
// keeps the loss the test measures away from chance). A packet that
// arrives again with a sequence number already seen (a retransmission)
// always passes. It also counts the sequence numbers its connection NACKs.
type lossy struct {
	every int

	mu      sync.Mutex
	seen    map[uint64]bool // SSRC<<16 | sequence number, of every packet that arrived
	firsts  int             // first arrivals
	dropAt  int             // the first arrival to drop in the current run, 0-based within it
	dropped int             // packets dropped
	repeats int             // packets that arrived again (retransmissions): all passed
	nacked  int             // sequence numbers NACKed in the RTCP the connection sent
}

func newLossy(every int) *lossy {
	return &lossy{every: every, seen: make(map[uint64]bool), dropAt: rand.IntN(every)}
}

// factory is the client's ReceiveInterceptor for this policy.
func (l *lossy) factory() interceptor.Factory { return relaytest.DropIncoming(l.drop, l.countNACKs) }

// drop reports whether a packet just arrived is to be dropped.
func (l *lossy) drop(ssrc uint32, seq uint16) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := uint64(ssrc)<<16 | uint64(seq)
	if l.seen[key] {
		l.repeats++
		return false
	}
	l.seen[key] = true
	i := l.firsts % l.every
	l.firsts++
	drop := i == l.dropAt
	if i == l.every-1 { // the run ends: pick the next one's
		l.dropAt = rand.IntN(l.every)
	}
	if drop {
		l.dropped++
	}
	return drop
}

func (l *lossy) countNACKs(pkts []rtcp.Packet) {
	n := 0
	for _, p := range pkts {
		if nack, ok := p.(*rtcp.TransportLayerNack); ok {
			for _, pair := range nack.Nacks {
				n += len(pair.PacketList())
			}
		}
	}
	l.mu.Lock()
	l.nacked += n
	l.mu.Unlock()
}

type lossyStats struct{ firsts, dropped, repeats, nacked int }

func (l *lossy) stats() lossyStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return lossyStats{l.firsts, l.dropped, l.repeats, l.nacked}
}

// lossOf returns how many distinct sequence numbers are missing between
// the first packet got received and the highest after it, and how many
// that range holds. Call with the receiver's lock held.
func lossOf(got *received) (missing, expected int) {
	maxOff := 0
	for seq := range got.payloads {
		if off := int(seq - got.first); off < 0x8000 && off > maxOff {
			maxOff = off
		}
	}
	have := 0
	for seq := range got.payloads {
		if off := int(seq - got.first); off <= maxOff {
			have++
		}
	}
	return maxOff + 1 - have, maxOff + 1
}

// TestNACKRepair: a host publishes real Opus for 4 s. An audience member
// whose sub connection loses 5% of the packets on arrival, before its NACK
// generator sees them, gets them back from the relay's history: its final
// loss is under 0.5%. A control receiver in the same room loses nothing
// and NACKs nothing. With NACK disabled on the lossy receiver, its loss
// stays near the 5% injected: the repair came from NACK.
func TestNACKRepair(t *testing.T) {
	const (
		frames    = 400 // 4 s of 10 ms frames
		dropEvery = 20  // 5%
	)
	tests := []struct {
		name        string
		disableNACK bool
	}{
		{"nack", false},
		{"nack disabled", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ctx := startRelay(t, relayOpts{})
			host := r.join(ctx, t, "nack", "Host", protocol.RoleHost)
			loss := newLossy(dropEvery)
			lossyC, err := client.Dial(ctx, client.Config{URL: r.URL, Room: "nack", Name: "Lossy", Role: protocol.RoleAudience,
				Loopback: true, Logger: relaytest.Logger(), DisableNACK: tt.disableNACK, ReceiveInterceptor: loss.factory()})
			if err != nil {
				t.Fatalf("lossy receiver joins: %v", err)
			}
			t.Cleanup(func() { _ = lossyC.Close() })
			control := r.join(ctx, t, "nack", "Control", protocol.RoleAudience)

			recvCtx, stopRecv := context.WithCancel(ctx)
			defer stopRecv()
			lossyR, controlR := receive(recvCtx, lossyC), receive(recvCtx, control)
			for _, c := range []*client.Client{lossyC, control} {
				if err := c.SubConnected(ctx); err != nil {
					t.Fatal(err)
				}
			}
			pub, err := host.Publish(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Connected(ctx); err != nil {
				t.Fatal(err)
			}
			sent, err := publish(ctx, pub, 7, frames)
			if err != nil {
				t.Fatalf("publish: %v", err)
			}

			// Let the last packets and their repairs arrive: until each
			// receiver has the last packet sent and (with NACK) nothing is
			// missing, for at most 3 s.
			settle, stopSettle := context.WithTimeout(ctx, 3*time.Second)
			defer stopSettle()
			complete := func(rc *receiver, repaired bool) bool {
				rc.mu.Lock()
				defer rc.mu.Unlock()
				got := rc.tracks[host.ID()]
				if got == nil || got.payloads[sent.last] == nil {
					return false
				}
				missing, _ := lossOf(got)
				return !repaired || missing == 0
			}
			waitSettled(settle, func() bool { return complete(controlR, true) && complete(lossyR, !tt.disableNACK) })
			time.Sleep(200 * time.Millisecond) // NACKs already in flight reach the relay's counters
			stopRecv()

			st := loss.stats()
			requested := r.counter(t, "relay_nack_requested_total")
			served := r.counter(t, "relay_nack_served_total")
			missed := r.counter(t, "relay_nack_missed_total")
			controlNACKs := requested - float64(st.nacked)

			lossyR.mu.Lock()
			got := lossyR.tracks[host.ID()]
			if got == nil {
				lossyR.mu.Unlock()
				t.Fatal("the lossy receiver never got the host's track")
			}
			lmissing, lexpected := lossOf(got)
			checkPayloads(t, "lossy", got, sent)
			lossyR.mu.Unlock()
			controlR.mu.Lock()
			cgot := controlR.tracks[host.ID()]
			if cgot == nil {
				controlR.mu.Unlock()
				t.Fatal("the control receiver never got the host's track")
			}
			cmissing, cexpected := lossOf(cgot)
			checkPayloads(t, "control", cgot, sent)
			controlR.mu.Unlock()

			lossPct := 100 * float64(lmissing) / float64(lexpected)
			t.Logf("lossy receiver: %d arrived, %d dropped on arrival (%.1f%%), %d sequence numbers NACKed, %d retransmissions arrived; "+
				"final loss %d of %d (%.2f%%)", st.firsts, st.dropped, 100*float64(st.dropped)/float64(max(st.firsts, 1)),
				st.nacked, st.repeats, lmissing, lexpected, lossPct)
			t.Logf("control receiver: loss %d of %d, NACKed %v; relay: nack requested %v, served %v, missed %v",
				cmissing, cexpected, controlNACKs, requested, served, missed)

			if lexpected < frames/2 || cexpected < frames/2 {
				t.Fatalf("the first packet arrived late: only %d (lossy) and %d (control) of %d packets counted", lexpected, cexpected, frames)
			}
			if st.dropped < lexpected/dropEvery-1 {
				t.Fatalf("the interceptor dropped %d packets of %d arrivals, want 1 in %d", st.dropped, st.firsts, dropEvery)
			}
			if cmissing != 0 {
				t.Errorf("the control receiver lost %d of %d packets, want none", cmissing, cexpected)
			}
			if controlNACKs != 0 {
				t.Errorf("the control receiver NACKed %v packets, want none", controlNACKs)
			}
			if tt.disableNACK {
				if lossPct <= 2 {
					t.Errorf("loss without NACK %.2f%%, want above 2%% (5%% injected)", lossPct)
				}
				if st.nacked != 0 || st.repeats != 0 {
					t.Errorf("NACK disabled, yet %d NACKed and %d retransmissions", st.nacked, st.repeats)
				}
				return
			}
			if lossPct >= 0.5 {
				t.Errorf("loss with NACK %.2f%% (%d of %d), want under 0.5%%", lossPct, lmissing, lexpected)
			}
			if requested <= 0 || served <= 0 {
				t.Errorf("relay_nack_requested_total %v, relay_nack_served_total %v, want both above 0", requested, served)
			}
			// The sub connections are direct (UDP, the relay the DTLS
			// server, direct ingest on): the socket readers took the NACKs.
			if byReaders := r.counter(t, "relay_direct_sub_rtcp_total"); byReaders <= 0 {
				t.Errorf("relay_direct_sub_rtcp_total %v: the NACKs did not reach the socket readers", byReaders)
			}
			if st.repeats == 0 {
				// The relay served NACKs, but none got through SRTP: replay
				// protection must be off on a sub with a ReceiveInterceptor.
				t.Errorf("no retransmission reached the interceptor")
			}
		})
	}
}

// checkPayloads reports packets whose payload differs from what was sent
// with that sequence number: a retransmission must carry the original.
// Call with the receiver's lock held.
func checkPayloads(t *testing.T, who string, got *received, sent *sentStream) {
	t.Helper()
	sent.mu.Lock()
	defer sent.mu.Unlock()
	bad := 0
	for seq, p := range got.payloads {
		if want, ok := sent.payloads[seq]; !ok || string(p) != string(want) {
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s receiver: %d packets with a payload never sent under their sequence number", who, bad)
	}
}

// waitSettled polls cond until it holds or ctx ends, whichever comes
// first; unlike waitFor, running out of time is not a failure.
func waitSettled(ctx context.Context, cond func() bool) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}
