package media

import (
	"encoding/binary"
	"testing"

	"github.com/pion/rtp"
)

func TestAudioLevel(t *testing.T) {
	const id = 3
	level := func(v uint8, voice bool) []byte {
		if voice {
			v |= 0x80 // the V bit, not part of the level
		}
		return []byte{v}
	}
	tests := []struct {
		name   string
		header func(*rtp.Header)
		// profile, if not 0, replaces the extension's profile word
		profile uint16
		want    uint8
		ok      bool
	}{
		{name: "one-byte header", want: 30, ok: true, header: func(h *rtp.Header) {
			h.Extension, h.ExtensionProfile = true, rtp.ExtensionProfileOneByte
			_ = h.SetExtension(id, level(30, true))
		}},
		{name: "one-byte header, after another element", want: 127, ok: true, header: func(h *rtp.Header) {
			h.Extension, h.ExtensionProfile = true, rtp.ExtensionProfileOneByte
			_ = h.SetExtension(1, []byte{1, 2, 3, 4})
			_ = h.SetExtension(id, level(127, false))
		}},
		{name: "two-byte header", want: 0, ok: true, header: func(h *rtp.Header) {
			h.Extension, h.ExtensionProfile = true, rtp.ExtensionProfileTwoByte
			_ = h.SetExtension(7, []byte{9, 9})
			_ = h.SetExtension(id, level(0, true))
		}},
		{name: "other ids only", header: func(h *rtp.Header) {
			h.Extension, h.ExtensionProfile = true, rtp.ExtensionProfileOneByte
			_ = h.SetExtension(1, []byte{5})
		}},
		{name: "no extension", header: func(*rtp.Header) {}},
		{name: "unknown profile", profile: 0x1234, header: func(h *rtp.Header) {
			h.Extension, h.ExtensionProfile = true, rtp.ExtensionProfileOneByte
			_ = h.SetExtension(id, level(30, true))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 1, SSRC: 5}
			tt.header(&h)
			raw, err := (&rtp.Packet{Header: h, Payload: []byte{0xfc, 1, 2}}).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			f, ok := parseRTP(raw)
			if !ok {
				t.Fatalf("parseRTP refused % x", raw)
			}
			if tt.profile != 0 {
				binary.BigEndian.PutUint16(raw[f.extOffset:], tt.profile)
			}
			got, ok := audioLevel(raw, &f, id)
			if ok != tt.ok || got != tt.want {
				t.Errorf("audioLevel = %d, %v; want %d, %v (packet % x)", got, ok, tt.want, tt.ok, raw)
			}
		})
	}
}

func TestLevelMeter(t *testing.T) {
	var m levelMeter
	const stale = int64(300e6)
	if got := m.level(1e9, stale); got != 0 {
		t.Fatalf("level before any packet = %v, want 0", got)
	}
	for i := range 100 { // a second of loud speech (-10 dBov)
		m.update(10, int64(i)*10e6)
	}
	got := m.level(1e9, stale)
	if want := float64(127-10) / 127; got < want-0.01 || got > want+0.01 {
		t.Errorf("level after 1 s at -10 dBov = %v, want about %v", got, want)
	}
	if got := m.level(1e9+stale+1, stale); got != 0 {
		t.Errorf("level after %d ns without packets = %v, want 0 (silence)", stale, got)
	}
}
