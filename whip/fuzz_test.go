package whip

import (
	"net/http"
	"testing"
)

// FuzzBodies: whatever a client sends as an offer or an SDP fragment,
// parsing ends in a value or a 400, never a panic.
func FuzzBodies(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-ufrag:abcd\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n")
	f.Add("a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n")
	f.Add("a=candidate:1 1 udp 1 1.2.3.4 5 typ host\n")
	f.Add("x")
	f.Fuzz(func(t *testing.T, body string) {
		if _, err := readOffer(body); err != nil && err.status != http.StatusBadRequest {
			t.Fatalf("readOffer: status %d", err.status)
		}
		frag, err := parseFrag(body)
		if err != nil && err.status != http.StatusBadRequest {
			t.Fatalf("parseFrag: status %d", err.status)
		}
		for _, c := range frag.candidates {
			if c.SDPMid == nil && c.SDPMLineIndex == nil {
				t.Fatalf("candidate %q belongs to no m-section", c.Candidate)
			}
		}
	})
}
