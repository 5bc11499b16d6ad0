package loadtest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lianmai/relay/loadtest/report"
)

func TestPlanListen(t *testing.T) {
	base := Scenario{Rooms: 2, Hosts: 1, Guests: 1, Audience: 5, DecodePerRoom: 1}
	tests := []struct {
		name   string
		change func(*Scenario)
		want   string // per room: a1..a5 as listen initial, upper case when decoding
	}{
		{"tracks", func(*Scenario) {}, "Ttttt"},
		{"all on the mix", func(s *Scenario) { s.AudienceListen = ListenMix }, "Mmmmm"},
		{"split: each group has its decoded sample", func(s *Scenario) { s.MixAudience = 2 }, "MmTtt"},
		{"split, two decoding per group", func(s *Scenario) { s.MixAudience, s.DecodePerRoom = 3, 2 }, "MMmTT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := base
			tt.change(&sc)
			sc = sc.WithDefaults()
			if err := sc.Validate(); err != nil {
				t.Fatal(err)
			}
			r, err := newRunner(sc, Config{URL: "ws://127.0.0.1:1/ws"})
			if err != nil {
				t.Fatal(err)
			}
			pubs, audience := r.plan()
			for _, p := range pubs {
				if p.listen != "" {
					t.Errorf("publisher %s asks for %q: publishers hear tracks and send no listen", p.name, p.listen)
				}
			}
			got := make([]strings.Builder, sc.Rooms)
			for _, a := range audience {
				c := a.listen[:1]
				if a.decode {
					c = strings.ToUpper(c)
				}
				got[a.room].WriteString(c)
			}
			for room := range got {
				if got[room].String() != tt.want {
					t.Errorf("room %d: %s, want %s", room, got[room].String(), tt.want)
				}
			}
		})
	}
}

// TestTallyMix checks who counts where: a mix listener expects the mix,
// not the publishers' tracks; one who got tracks instead is flagged; one
// who got nothing is missing, unless it joined too late to expect it.
func TestTallyMix(t *testing.T) {
	sc := Scenario{Rooms: 1, Hosts: 1, Audience: 4, AudienceListen: ListenMix}.WithDefaults()
	r, err := newRunner(sc, Config{URL: "ws://127.0.0.1:1/ws"})
	if err != nil {
		t.Fatal(err)
	}
	sec := int64(time.Second)
	r.win = newWindow(0, 10*sec)

	log := newFrameLog("p_host", 0, testTS0, testSeq0, 2000)
	for k := int64(0); k < 900; k++ {
		log.stamp(k, sec+k*frameInterval, false)
	}
	host := &participant{r: r, name: "h1", role: roleHost, id: "p_host", joinedNs: sec, own: newWindow(0, never),
		up: &uplink{}, pub: &publisher{log: log}}

	listener := func(name string, joinedNs int64) *participant {
		return &participant{r: r, name: name, role: roleAudience, listen: ListenMix, id: "p_" + name,
			dialNs: joinedNs - sec/10, joinedNs: joinedNs, own: newWindow(0, never)}
	}
	heard := listener("a1", 2*sec) // got the mix
	m := newMixStats(r.win, heard.own, heard.dialNs, r.maxFrames, &r.live)
	for k := int64(0); k < 100; k++ {
		m.onPacket(3*sec+k*frameInterval+ms, mixPacket(uint16(k), uint32(k*480), []byte{1}))
	}
	heard.mixes = []*mixStats{m}

	ignored := listener("a2", 2*sec) // the relay sent tracks instead
	st := newStreamStats(log, r.win, ignored.own, ignored.dialNs, nil, &r.live)
	st.onPacket(sentAt(0), rtpPacket(0))
	ignored.streams = []*streamStats{st}

	late := listener("a3", 9*sec) // joined under 3 s before the end: nothing expected yet
	silent := listener("a4", 2*sec)
	r.parts = []*participant{host, heard, ignored, late, silent}

	var meas report.Measurements
	r.tallyAudioLocked(&meas)
	x := meas.Audio.Mix
	if x.Listeners != 4 || x.Receivers != 1 || x.Streams != 1 || x.TracksInstead != 1 || x.MissingListeners != 2 {
		t.Fatalf("mix: %d listeners, %d receivers, %d streams, %d tracks instead, %d missing (%v); want 4 1 1 1 2",
			x.Listeners, x.Receivers, x.Streams, x.TracksInstead, x.MissingListeners, x.Missing)
	}
	for i, name := range []string{"a2", "a4"} {
		if !strings.HasPrefix(x.Missing[i], name+" ") {
			t.Errorf("missing[%d] = %q, want %s's", i, x.Missing[i], name)
		}
	}
	// The host was sending before a1 dialed: a1's first packet is its join latency.
	if len(meas.MixFirstPacketMs) != 1 || meas.MixFirstPacketMs[0] != float64(3*sec+ms-heard.dialNs)/1e6 {
		t.Fatalf("mix first packet %v", meas.MixFirstPacketMs)
	}
	a := meas.Audio
	if a.MissingPublishers != 0 || a.Receivers != 1 || a.Streams != 1 {
		t.Fatalf("tracks: %d missing (%v), %d receivers, %d streams; want 0 1 1: mix listeners expect no tracks", a.MissingPublishers, a.Missing, a.Receivers, a.Streams)
	}
	rep := report.Build(&meas)
	if w := fmt.Sprint(rep.Warnings); !strings.Contains(w, "ignored join's listen") {
		t.Fatalf("no warning about the ignored listen: %s", w)
	}
}
