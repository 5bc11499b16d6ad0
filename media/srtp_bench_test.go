package media

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// BenchmarkSRTPEncrypt: what pion's SRTP costs per forwarded packet (a
// 10 ms Opus frame) under each profile the relay may negotiate.
func BenchmarkSRTPEncrypt(b *testing.B) {
	for _, tt := range []struct {
		name    string
		profile srtp.ProtectionProfile
	}{
		{"AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm},
		{"AES_256_GCM", srtp.ProtectionProfileAeadAes256Gcm},
		{"AES128_CM_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80},
	} {
		b.Run(tt.name, func(b *testing.B) {
			keyLen, err := tt.profile.KeyLen()
			if err != nil {
				b.Fatal(err)
			}
			saltLen, err := tt.profile.SaltLen()
			if err != nil {
				b.Fatal(err)
			}
			ctx, err := srtp.CreateContext(bytes.Repeat([]byte{1}, keyLen), bytes.Repeat([]byte{2}, saltLen), tt.profile)
			if err != nil {
				b.Fatal(err)
			}
			h := rtp.Header{Version: 2, PayloadType: testOutPT, SSRC: testOutSSRC}
			payload := bytes.Repeat([]byte{0xfc}, 80) // a 10 ms Opus frame at ~64 kb/s
			plain := make([]byte, 1500)
			dst := make([]byte, 1500)
			b.ReportAllocs()
			for b.Loop() {
				h.SequenceNumber++
				h.Timestamp += testFrameTS
				n, err := h.MarshalTo(plain)
				if err != nil {
					b.Fatal(err)
				}
				n += copy(plain[n:], payload)
				if _, err := ctx.EncryptRTP(dst, plain[:n], &h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
