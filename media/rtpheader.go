package media

import "encoding/binary"

// rtpFields are what the fan-out needs from a packet's fixed header,
// parsed once per packet by the track's reader (without allocating:
// rtp.Header.Unmarshal allocates for extensions) and handed to every
// subscriber's write.
type rtpFields struct {
	marker  bool
	padding bool
	seq     uint16
	ts      uint32
	ssrc    uint32
	// extOffset is where the header extension starts (its profile word),
	// 0 without one; the audio level is read from there.
	extOffset int
	// payloadOffset is where the payload starts: after the CSRCs and the
	// header extension, which the relay does not forward because their ids
	// are negotiated per connection.
	payloadOffset int
	// paddingSize is the number of padding bytes at the end (the last
	// byte says how many), 0 without padding.
	paddingSize byte
}

// parseRTP reads b's RTP header. ok is false for anything that is not a
// well-formed RTP version 2 packet.
func parseRTP(b []byte) (f rtpFields, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return f, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return f, false
		}
		f.extOffset = off
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	if off > len(b) {
		return f, false
	}
	f.padding = b[0]&0x20 != 0
	if f.padding {
		// RFC 3550 5.1: the count includes itself, so it is at least 1.
		if off == len(b) || b[len(b)-1] == 0 || int(b[len(b)-1]) > len(b)-off {
			return f, false
		}
		f.paddingSize = b[len(b)-1]
	}
	f.marker = b[1]&0x80 != 0
	f.seq = binary.BigEndian.Uint16(b[2:])
	f.ts = binary.BigEndian.Uint32(b[4:])
	f.ssrc = binary.BigEndian.Uint32(b[8:])
	f.payloadOffset = off
	return f, true
}

// payload is b's payload without padding, b being the packet f was
// parsed from.
func (f *rtpFields) payload(b []byte) []byte {
	return b[f.payloadOffset : len(b)-int(f.paddingSize)]
}
