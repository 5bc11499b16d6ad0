package media

import "github.com/pion/webrtc/v4"

// Opus is the only codec the relay negotiates: Opus at 48 kHz, asking for
// 10 ms frames with in-band FEC, and NACK so that lost packets can be
// repaired from the relay's history.
var Opus = webrtc.RTPCodecParameters{
	RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType:     webrtc.MimeTypeOpus,
		ClockRate:    48000,
		Channels:     2,
		SDPFmtpLine:  "minptime=10;useinbandfec=1",
		RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}},
	},
	PayloadType: 111,
}
