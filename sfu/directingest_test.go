package sfu_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/server"
	"github.com/pion/rtp"
)

// TestDirectIngest: a publisher's packets, read and decrypted by the
// relay's socket readers (direct ingest, the default), reach a stock pion
// listener byte-identical, as they do through pion's receive path with
// direct ingest off; the pub answer makes the relay the DTLS server only
// with direct ingest, and the counters show which path carried the media.
// The publisher sends audio levels, which pion clients encrypt with
// cryptex (RFC 9335): the room's speakers event names it.
func TestDirectIngest(t *testing.T) {
	const frames = 200
	for _, tt := range []struct {
		name   string
		direct bool
	}{{"direct", true}, {"pion", false}} {
		t.Run(tt.name, func(t *testing.T) {
			r, ctx := relaytest.StartChecked(t, relaytest.Options{Tune: func(c *server.Config) { c.NoDirectIngest = !tt.direct }}, 60*time.Second)
			host, pub, aud := hostAndListener(ctx, t, r, client.Config{Room: "direct", Name: "host", Role: protocol.RoleHost})
			wantSetup := "a=setup:active"
			if tt.direct {
				wantSetup = "a=setup:passive"
			}
			if !strings.Contains(pub.AnswerSDP(), wantSetup) {
				t.Errorf("the pub answer lacks %q:\n%s", wantSetup, pub.AnswerSDP())
			}

			var mu sync.Mutex
			sent := map[uint16][]byte{}
			heard := map[uint16][]byte{}
			readDone := hearTrack(ctx, aud, func(p *rtp.Packet) {
				mu.Lock()
				heard[p.SequenceNumber] = bytes.Clone(p.Payload) // a first stream keeps the publisher's numbering
				mu.Unlock()
			})
			levelID := pub.AudioLevelExtensionID()
			if levelID == 0 {
				t.Fatal("the relay did not negotiate the audio level extension")
			}
			if tt.direct && !strings.Contains(pub.AnswerSDP(), "a=cryptex") {
				t.Log("cryptex not negotiated: the extensions travel in the clear")
			}
			sendFrames(ctx, t, pub, frames, func(payload []byte, p *rtp.Packet) {
				if err := p.Header.SetExtension(levelID, []byte{0x80 | 20}); err != nil { // voice, -20 dBov
					t.Error(err)
				}
				mu.Lock()
				sent[p.SequenceNumber] = bytes.Clone(payload)
				mu.Unlock()
			})
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				mu.Lock()
				k := len(heard)
				mu.Unlock()
				if k >= frames-10 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			relaytest.WaitEvent(ctx, t, host, func(s *protocol.Speakers) bool { return len(s.Speakers) > 0 && s.Speakers[0].Participant == host.ID() })
			direct := r.Value(t, "relay_direct_ingest_packets_total")
			if fails := r.Value(t, "relay_direct_ingest_auth_failures_total"); fails != 0 {
				t.Errorf("%v packets did not authenticate with the relay's keys, want none", fails)
			}
			in := r.Value(t, "relay_packets_in_total")
			_ = aud.Close()
			<-readDone

			mu.Lock()
			defer mu.Unlock()
			bad := 0
			for seq, p := range heard {
				if want, ok := sent[seq]; !ok || !bytes.Equal(p, want) {
					bad++
				}
			}
			t.Logf("%d sent, %d heard, %d differ; relay: %v in, %v of them ingested directly", len(sent), len(heard), bad, in, direct)
			if len(heard) < frames-10 {
				t.Errorf("the listener heard %d of %d packets", len(heard), frames)
			}
			if bad != 0 {
				t.Errorf("%d packets heard with a payload never sent under their sequence number", bad)
			}
			if in < frames-10 {
				t.Errorf("relay_packets_in_total %v, want about %d", in, frames)
			}
			switch {
			case tt.direct && direct < in-20:
				// pion needs the first packets to announce the track;
				// everything after its OnTrack goes direct.
				t.Errorf("%v of %v packets ingested directly, want all but the first few", direct, in)
			case !tt.direct && direct != 0:
				t.Errorf("%v packets ingested directly with direct ingest off", direct)
			}
		})
	}
}
