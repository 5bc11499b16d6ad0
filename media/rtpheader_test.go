package media

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
)

// marshalRTP builds a packet with pion, the reference the relay's own
// parser is checked against.
func marshalRTP(t testing.TB, p *rtp.Packet) []byte {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatalf("marshal %v: %v", p, err)
	}
	return b
}

// withOneByteExt sets one-byte header extensions (RFC 8285) on h.
func withOneByteExt(t testing.TB, h rtp.Header, exts map[uint8][]byte) rtp.Header {
	t.Helper()
	for id, v := range exts {
		if err := h.SetExtension(id, v); err != nil {
			t.Fatalf("set extension %d: %v", id, err)
		}
	}
	return h
}

type parseRTPCase struct {
	name string
	raw  []byte
	ok   bool
	// When ok:
	want        rtpFields // payloadOffset is checked through payloadTail, extOffset against the header's bits
	payloadTail []byte    // raw[payloadOffset:]: the payload and any padding (want.paddingSize bytes)
}

func parseRTPCases(t testing.TB) []parseRTPCase {
	payload := []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5}
	base := rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 4242, Timestamp: 0x01020304, SSRC: 0xcafebabe}

	plain := marshalRTP(t, &rtp.Packet{Header: base, Payload: payload})

	marked := base
	marked.Marker = true
	marked.SequenceNumber = 0xffff
	marked.Timestamp = 0xffffffff
	markedRaw := marshalRTP(t, &rtp.Packet{Header: marked, Payload: payload})

	csrc := base
	csrc.CSRC = []uint32{1, 2, 3}
	csrcRaw := marshalRTP(t, &rtp.Packet{Header: csrc, Payload: payload})

	maxCSRC := base
	maxCSRC.CSRC = []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	maxCSRCRaw := marshalRTP(t, &rtp.Packet{Header: maxCSRC, Payload: payload})

	ext := withOneByteExt(t, base, map[uint8][]byte{1: {0x80 | 42}, 3: {0, 1, 2, 3, 4}})
	extRaw := marshalRTP(t, &rtp.Packet{Header: ext, Payload: payload})

	everything := withOneByteExt(t, csrc, map[uint8][]byte{1: {0x80 | 42}})
	everything.Marker = true
	everything.Padding = true
	everything.PaddingSize = 7
	everythingRaw := marshalRTP(t, &rtp.Packet{Header: everything, Payload: payload})
	everythingTail := append(append([]byte{}, payload...), 0, 0, 0, 0, 0, 0, 7)

	padded := base
	padded.Padding = true
	padded.PaddingSize = 3
	paddedRaw := marshalRTP(t, &rtp.Packet{Header: padded, Payload: payload})

	// Chrome's padding-only packets: no payload, all padding.
	padOnly := base
	padOnly.Padding = true
	padOnly.PaddingSize = 4
	padOnlyRaw := marshalRTP(t, &rtp.Packet{Header: padOnly})

	emptyPayload := marshalRTP(t, &rtp.Packet{Header: base})

	fields := func(h rtp.Header) rtpFields {
		return rtpFields{marker: h.Marker, padding: h.Padding, seq: h.SequenceNumber, ts: h.Timestamp, ssrc: h.SSRC, paddingSize: h.PaddingSize}
	}
	mutate := func(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }

	return []parseRTPCase{
		{name: "plain header and payload", raw: plain, ok: true, want: fields(base), payloadTail: payload},
		{name: "marker and wrapping values", raw: markedRaw, ok: true, want: fields(marked), payloadTail: payload},
		{name: "three CSRCs", raw: csrcRaw, ok: true, want: fields(csrc), payloadTail: payload},
		{name: "fifteen CSRCs", raw: maxCSRCRaw, ok: true, want: fields(maxCSRC), payloadTail: payload},
		{name: "one-byte header extension", raw: extRaw, ok: true, want: fields(ext), payloadTail: payload},
		{name: "CSRCs extension marker and padding", raw: everythingRaw, ok: true, want: fields(everything), payloadTail: everythingTail},
		{name: "padding", raw: paddedRaw, ok: true, want: fields(padded), payloadTail: append(append([]byte{}, payload...), 0, 0, 3)},
		{name: "padding only", raw: padOnlyRaw, ok: true, want: fields(padOnly), payloadTail: []byte{0, 0, 0, 4}},
		{name: "header only", raw: emptyPayload, ok: true, want: fields(base), payloadTail: []byte{}},

		{name: "empty", raw: nil},
		{name: "eleven bytes", raw: plain[:11]},
		{name: "version 0", raw: mutate(plain, func(b []byte) []byte { b[0] &^= 0xc0; return b })},
		{name: "version 1", raw: mutate(plain, func(b []byte) []byte { b[0] = b[0]&^0xc0 | 0x40; return b })},
		{name: "version 3", raw: mutate(plain, func(b []byte) []byte { b[0] |= 0xc0; return b })},
		{name: "CSRC count beyond the end", raw: mutate(plain, func(b []byte) []byte { b[0] |= 0x0f; return b })},
		{name: "CSRC count beyond a short packet", raw: csrcRaw[:12+4*3-1]},
		{name: "extension bit without extension header", raw: mutate(plain[:12+2], func(b []byte) []byte { b[0] |= 0x10; return b })},
		{name: "extension length beyond the end", raw: mutate(extRaw, func(b []byte) []byte {
			b[12+2], b[12+3] = 0x40, 0 // 16384 words
			return b
		})},
		{name: "extension one word beyond the end", raw: extRaw[:len(extRaw)-len(payload)-1]},
		{name: "padding count larger than the payload", raw: mutate(paddedRaw, func(b []byte) []byte { b[len(b)-1] = byte(len(payload) + 3 + 1); return b })},
		{name: "padding count larger than the packet", raw: mutate(paddedRaw, func(b []byte) []byte { b[len(b)-1] = 0xff; return b })},
		{name: "padding bit without any payload", raw: mutate(emptyPayload, func(b []byte) []byte { b[0] |= 0x20; return b })},
		{name: "padding bit after extension without payload", raw: mutate(extRaw[:len(extRaw)-len(payload)], func(b []byte) []byte { b[0] |= 0x20; return b })},
	}
}

// extOffsetOf is where b's header extension starts by RFC 3550 (after
// the fixed header and the CSRCs), 0 without one.
func extOffsetOf(b []byte) int {
	if b[0]&0x10 == 0 {
		return 0
	}
	return 12 + 4*int(b[0]&0x0f)
}

func TestParseRTP(t *testing.T) {
	for _, tc := range parseRTPCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := parseRTP(tc.raw)
			if ok != tc.ok {
				t.Fatalf("parseRTP(% x) ok = %v, want %v", tc.raw, ok, tc.ok)
			}
			if !ok {
				return
			}
			got := f
			got.payloadOffset, got.extOffset = 0, 0
			if got != tc.want {
				t.Errorf("fields = %+v, want %+v", got, tc.want)
			}
			if f.payloadOffset < 12 || f.payloadOffset > len(tc.raw) {
				t.Fatalf("payloadOffset = %d, want within [12, %d]", f.payloadOffset, len(tc.raw))
			}
			if tail := tc.raw[f.payloadOffset:]; !bytes.Equal(tail, tc.payloadTail) {
				t.Errorf("raw[payloadOffset=%d:] = % x, want % x", f.payloadOffset, tail, tc.payloadTail)
			}
			if want := extOffsetOf(tc.raw); f.extOffset != want {
				t.Errorf("extOffset = %d, want %d", f.extOffset, want)
			}
		})
	}
}

func TestParseRTPDoesNotAllocate(t *testing.T) {
	raw := parseRTPCases(t)[5].raw // CSRCs, extension and padding
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := parseRTP(raw); !ok {
			t.Fatal("parseRTP failed")
		}
	})
	if allocs != 0 {
		t.Errorf("parseRTP allocates %v times per packet, want 0", allocs)
	}
}

func FuzzParseRTP(f *testing.F) {
	for _, tc := range parseRTPCases(f) {
		f.Add(tc.raw)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := parseRTP(b)
		if ok && (got.payloadOffset < 12 || got.payloadOffset > len(b)) {
			t.Fatalf("payloadOffset = %d for a %d-byte packet", got.payloadOffset, len(b))
		}
		// Whatever pion accepts as a version 2 packet, the relay accepts
		// and reads the same way. (The relay is more lenient in one
		// direction: it does not parse extension elements.)
		var p rtp.Packet
		if len(b) == 0 || b[0]>>6 != 2 || p.Unmarshal(b) != nil {
			return
		}
		if !ok {
			t.Fatalf("parseRTP rejects a packet pion accepts: % x", b)
		}
		want := rtpFields{
			extOffset: extOffsetOf(b),
			marker:    p.Marker, padding: p.Padding, seq: p.SequenceNumber,
			ts: p.Timestamp, ssrc: p.SSRC, payloadOffset: len(b) - len(p.Payload) - int(p.Header.PaddingSize),
			paddingSize: p.Header.PaddingSize,
		}
		if got != want {
			t.Fatalf("parseRTP(% x) = %+v, pion reads %+v", b, got, want)
		}
	})
}
