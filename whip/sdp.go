package whip

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// offerInfo is what the handlers check in a client's offer before the room
// layer sees it.
type offerInfo struct {
	sendsAudio, receivesAudio bool
	ufrag                     string // the first ICE username fragment (BUNDLE: one for all)
}

// readOffer parses the client's offer: 400 if it is not SDP.
func readOffer(body string) (offerInfo, *httpError) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(body); err != nil {
		return offerInfo{}, fail(http.StatusBadRequest, fmt.Sprintf("the body is not an SDP offer: %v", err))
	}
	var info offerInfo
	info.ufrag, _ = d.Attribute("ice-ufrag")
	for _, m := range d.MediaDescriptions {
		if info.ufrag == "" {
			info.ufrag, _ = m.Attribute("ice-ufrag")
		}
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 {
			continue
		}
		switch direction(m) {
		case webrtc.RTPTransceiverDirectionSendrecv:
			info.sendsAudio, info.receivesAudio = true, true
		case webrtc.RTPTransceiverDirectionSendonly:
			info.sendsAudio = true
		case webrtc.RTPTransceiverDirectionRecvonly:
			info.receivesAudio = true
		}
	}
	return info, nil
}

// direction is an m-section's direction attribute; sendrecv by default.
func direction(m *sdp.MediaDescription) webrtc.RTPTransceiverDirection {
	for _, a := range m.Attributes {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return webrtc.NewRTPTransceiverDirection(a.Key)
		}
	}
	return webrtc.RTPTransceiverDirectionSendrecv
}

// sdpFrag is a trickle-ice-sdpfrag body (RFC 8840): the candidates and
// the ICE credentials they belong to.
type sdpFrag struct {
	ufrag      string
	candidates []webrtc.ICECandidateInit
}

// parseFrag reads a PATCH body. Each candidate belongs to the m-section of
// the a=mid before it; a=end-of-candidates needs nothing.
func parseFrag(body string) (sdpFrag, *httpError) {
	var f sdpFrag
	var mid *string
	for line := range strings.Lines(body) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			f.ufrag = strings.TrimPrefix(line, "a=ice-ufrag:")
		case strings.HasPrefix(line, "a=mid:"):
			m := strings.TrimPrefix(line, "a=mid:")
			mid = &m
		case strings.HasPrefix(line, "a=candidate:"):
			c := webrtc.ICECandidateInit{Candidate: strings.TrimPrefix(line, "a="), SDPMid: mid}
			if mid == nil {
				zero := uint16(0)
				c.SDPMLineIndex = &zero
			}
			f.candidates = append(f.candidates, c)
		case len(line) < 2 || line[1] != '=':
			return sdpFrag{}, fail(http.StatusBadRequest, fmt.Sprintf("not an SDP fragment line: %q", line))
		}
	}
	return f, nil
}
