package media

import (
	"bytes"
	"encoding/binary"
)

// STUN, as far as the relay's UDP mux (udpmux.go) reads it: an ICE
// connectivity check names the connection it is for in its USERNAME
// attribute, "<receiver's ufrag>:<sender's ufrag>" (RFC 8445 section
// 7.2.2), and that is how a datagram from an address no connection has
// written to yet finds its connection. Parsed in place, without
// allocating: the socket readers call it for every STUN datagram.

const (
	stunHeaderSize   = 20
	stunMagicCookie  = 0x2112A442
	stunAttrUsername = 0x0006
)

// isSTUN reports whether b looks like a STUN message: the two top bits
// of its first byte clear (RFC 7983 puts STUN in 0–3) and the magic
// cookie in place (RFC 5389), as pion's own check does.
func isSTUN(b []byte) bool {
	return len(b) >= stunHeaderSize && b[0]&0xc0 == 0 && binary.BigEndian.Uint32(b[4:8]) == stunMagicCookie
}

// stunLocalUfrag is the receiver's ufrag in b's USERNAME attribute (its
// part before the first ':', the whole value if there is none), a slice
// of b; false if b is not a well-formed STUN message with a USERNAME.
func stunLocalUfrag(b []byte) ([]byte, bool) {
	if !isSTUN(b) {
		return nil, false
	}
	end := stunHeaderSize + int(binary.BigEndian.Uint16(b[2:4]))
	if end > len(b) {
		return nil, false // truncated: pion would refuse to decode it too
	}
	for at := stunHeaderSize; at+4 <= end; {
		typ := binary.BigEndian.Uint16(b[at:])
		n := int(binary.BigEndian.Uint16(b[at+2:]))
		val := at + 4
		if val+n > end {
			return nil, false
		}
		if typ == stunAttrUsername {
			u := b[val : val+n]
			if i := bytes.IndexByte(u, ':'); i >= 0 {
				u = u[:i]
			}
			return u, true
		}
		at = val + (n+3)&^3 // values are padded to 4 bytes
	}
	return nil, false
}
