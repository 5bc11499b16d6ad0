package client

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/lianmai/relay/protocol"
	"github.com/pion/webrtc/v4"
)

func ptr[T any](v T) *T { return &v }

func TestCandidateFromWire(t *testing.T) {
	tests := []struct {
		name   string
		json   string
		want   webrtc.ICECandidateInit
		wantOK bool
	}{
		{
			name: "full",
			json: `{"pc":"sub","candidate":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}`,
			want: webrtc.ICECandidateInit{
				Candidate:        "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host",
				SDPMid:           ptr("0"),
				SDPMLineIndex:    ptr(uint16(0)),
				UsernameFragment: ptr("abcd"),
			},
			wantOK: true,
		},
		{
			name:   "null sdpMid",
			json:   `{"pc":"sub","candidate":{"candidate":"candidate:x","sdpMid":null,"sdpMLineIndex":1}}`,
			want:   webrtc.ICECandidateInit{Candidate: "candidate:x", SDPMLineIndex: ptr(uint16(1))},
			wantOK: true,
		},
		{
			name:   "null sdpMLineIndex",
			json:   `{"pc":"pub","candidate":{"candidate":"candidate:x","sdpMid":"audio","sdpMLineIndex":null}}`,
			want:   webrtc.ICECandidateInit{Candidate: "candidate:x", SDPMid: ptr("audio")},
			wantOK: true,
		},
		{
			name: "end of candidates",
			json: `{"pc":"sub","candidate":null}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := decodeServerMessage(protocol.TypeCandidate, []byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := candidateFromWire(msg.(*protocol.Candidate).Candidate)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestCandidateWireJSON checks the JSON the client sends: the browser's
// RTCIceCandidateInit keys, nulls for missing mid and index, and null for
// the end of candidates.
func TestCandidateWireJSON(t *testing.T) {
	local := &webrtc.ICECandidate{
		Foundation: "1",
		Priority:   2130706431,
		Address:    "127.0.0.1",
		Protocol:   webrtc.ICEProtocolUDP,
		Port:       50000,
		Typ:        webrtc.ICECandidateTypeHost,
		Component:  1,
		SDPMid:     "0",
	}
	tests := []struct {
		name  string
		cand  *webrtc.ICECandidate
		ufrag string
		want  map[string]any // the "candidate" field
	}{
		{
			name:  "with ufrag",
			cand:  local,
			ufrag: "uF",
			want: map[string]any{
				"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host",
				"sdpMid":    "0", "sdpMLineIndex": float64(0), "usernameFragment": "uF",
			},
		},
		{
			name: "without ufrag",
			cand: local,
			want: map[string]any{
				"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host",
				"sdpMid":    "0", "sdpMLineIndex": float64(0),
			},
		},
		{name: "end of candidates", cand: nil, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(&protocol.Candidate{
				Header:    protocol.Header{Type: protocol.TypeCandidate},
				PC:        protocol.PCSub,
				Candidate: candidateToWire(tt.cand, tt.ufrag),
			})
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(data, &got); err != nil {
				t.Fatal(err)
			}
			c, present := got["candidate"]
			if !present {
				t.Fatalf("no candidate key in %s", data)
			}
			if tt.want == nil {
				if c != nil {
					t.Fatalf("candidate = %v, want null", c)
				}
				return
			}
			if !reflect.DeepEqual(c, tt.want) {
				t.Fatalf("candidate = %v, want %v", c, tt.want)
			}
			// And it passes the relay's own validation.
			if _, err := protocol.Decode(data); err != nil {
				t.Fatalf("protocol.Decode: %v", err)
			}
		})
	}

	t.Run("null mid and index round trip", func(t *testing.T) {
		w := &protocol.ICECandidate{Candidate: "candidate:x", SDPMLineIndex: ptr(uint16(0))}
		data, _ := json.Marshal(w)
		if !strings.Contains(string(data), `"sdpMid":null`) {
			t.Fatalf("sdpMid not null in %s", data)
		}
		var back protocol.ICECandidate
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		init, ok := candidateFromWire(&back)
		if !ok || init.SDPMid != nil || init.SDPMLineIndex == nil || *init.SDPMLineIndex != 0 {
			t.Fatalf("round trip gave %+v", init)
		}
	})
}

func TestICEUfrag(t *testing.T) {
	sdp := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:AbC\r\na=ice-pwd:x\r\n"
	if got := iceUfrag(sdp); got != "AbC" {
		t.Fatalf("iceUfrag = %q", got)
	}
	if got := iceUfrag("v=0\r\n"); got != "" {
		t.Fatalf("iceUfrag = %q, want empty", got)
	}
}

func TestHoldQueue(t *testing.T) {
	t.Run("holds until open, in order", func(t *testing.T) {
		var q holdQueue[int]
		var got []int
		for i := range 3 {
			if err := q.push(i); err != nil {
				t.Fatal(err)
			}
		}
		if len(got) != 0 {
			t.Fatal("applied before open")
		}
		if err := q.open(func(v int) error { got = append(got, v); return nil }); err != nil {
			t.Fatal(err)
		}
		if err := q.push(3); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, []int{0, 1, 2, 3}) {
			t.Fatalf("applied %v", got)
		}
	})
	t.Run("open twice keeps the first apply", func(t *testing.T) {
		var q holdQueue[int]
		var first, second int
		_ = q.open(func(int) error { first++; return nil })
		_ = q.open(func(int) error { second++; return nil })
		_ = q.push(1)
		if first != 1 || second != 0 {
			t.Fatalf("first %d, second %d", first, second)
		}
	})
	t.Run("errors are returned, the rest applied", func(t *testing.T) {
		var q holdQueue[int]
		_ = q.push(1)
		_ = q.push(2)
		_ = q.push(3)
		bad := errors.New("bad")
		var got []int
		err := q.open(func(v int) error {
			got = append(got, v)
			if v == 2 {
				return bad
			}
			return nil
		})
		if !errors.Is(err, bad) || len(got) != 3 {
			t.Fatalf("err %v, applied %v", err, got)
		}
		if err := q.push(2); !errors.Is(err, bad) {
			t.Fatalf("push after open: %v", err)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		var q holdQueue[int]
		for i := range maxHeld {
			if err := q.push(i); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.push(0); !errors.Is(err, errHoldFull) {
			t.Fatalf("push beyond the bound: %v", err)
		}
	})
}

// fakeAdder records AddICECandidate calls and refuses them before a remote
// description, as pion does.
type fakeAdder struct {
	haveRemote bool
	added      []string
}

func (f *fakeAdder) AddICECandidate(c webrtc.ICECandidateInit) error {
	if !f.haveRemote {
		return errors.New("no remote description")
	}
	f.added = append(f.added, c.Candidate)
	return nil
}

// TestEarlyRemoteCandidates follows a pub peer: the relay's candidates
// arrive before its answer is applied and are added after.
func TestEarlyRemoteCandidates(t *testing.T) {
	c := &Client{}
	c.log = discardLogger()
	p := &peer{name: protocol.PCPub}
	c.pub = p
	for _, s := range []string{"candidate:a", "candidate:b"} {
		c.handleRemoteCandidate(&protocol.Candidate{PC: protocol.PCPub,
			Candidate: &protocol.ICECandidate{Candidate: s, SDPMid: ptr("0")}})
	}
	c.handleRemoteCandidate(&protocol.Candidate{PC: protocol.PCPub}) // end: ignored
	pc := &fakeAdder{}
	pc.haveRemote = true // SetRemoteDescription happened
	if err := p.remote.open(pc.AddICECandidate); err != nil {
		t.Fatal(err)
	}
	c.handleRemoteCandidate(&protocol.Candidate{PC: protocol.PCPub,
		Candidate: &protocol.ICECandidate{Candidate: "candidate:c", SDPMLineIndex: ptr(uint16(0))}})
	if want := []string{"candidate:a", "candidate:b", "candidate:c"}; !reflect.DeepEqual(pc.added, want) {
		t.Fatalf("added %v, want %v", pc.added, want)
	}
}
