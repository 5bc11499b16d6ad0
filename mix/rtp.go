package mix

import "encoding/binary"

// headerSize is the mixer's RTP header: no CSRC, no extension.
const headerSize = 12

// putHeader writes the RTP header of a mixed packet into b[:headerSize].
func putHeader(b []byte, marker bool, seq uint16, ts, ssrc uint32) {
	b[0] = 0x80 // version 2, no padding, no extension, no CSRC
	b[1] = PayloadType
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:4], seq)
	binary.BigEndian.PutUint32(b[4:8], ts)
	binary.BigEndian.PutUint32(b[8:12], ssrc)
}
