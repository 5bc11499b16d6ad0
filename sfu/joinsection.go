package sfu

import (
	"fmt"

	"github.com/pion/webrtc/v4"
)

// addJoinSection gives a sub connection the relay offers its first
// m-section, so that ICE and DTLS complete at join time rather than when
// the first track appears: a receive-only audio transceiver. The client
// has nothing to send on it and answers inactive; no track appears on
// its side (a receiver's ontrack needs an m-section the relay sends on).
// Unlike the data channel it replaces, it starts no SCTP association (4
// goroutines, its buffers and its retransmission timer per listener;
// docs/performance.md, "A lighter listener"). The first track the relay
// adds takes this transceiver over (pion's AddTrack reuses an audio
// transceiver with no sender), so the offer gains no m-section for it.
func addJoinSection(pc *webrtc.PeerConnection) error {
	_, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	if err != nil {
		return fmt.Errorf("add the join audio section: %w", err)
	}
	return nil
}
