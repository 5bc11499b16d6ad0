package sfu

import (
	"testing"
	"time"
)

// TestDTLSCertShared: every new connection gets the same certificate
// until it is a day old; then a new one (another key and fingerprint),
// and that one is shared again.
func TestDTLSCertShared(t *testing.T) {
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	c := &dtlsCert{now: func() time.Time { return now }}
	fingerprint := func() string {
		t.Helper()
		certs, err := c.current()
		if err != nil {
			t.Fatal(err)
		}
		if len(certs) != 1 {
			t.Fatalf("%d certificates, want 1", len(certs))
		}
		fps, err := certs[0].GetFingerprints()
		if err != nil || len(fps) == 0 {
			t.Fatalf("fingerprints %v: %v", fps, err)
		}
		if exp := certs[0].Expires(); !exp.After(time.Now().Add(certLifetime)) {
			t.Errorf("the certificate expires %v, before it stops being handed out", exp)
		}
		return fps[0].Value
	}
	first := fingerprint()
	now = now.Add(certLifetime - time.Second)
	if fp := fingerprint(); fp != first {
		t.Errorf("a new certificate before a day: %s, was %s", fp, first)
	}
	now = now.Add(time.Second)
	second := fingerprint()
	if second == first {
		t.Error("the same certificate after a day")
	}
	if fp := fingerprint(); fp != second {
		t.Errorf("the renewed certificate is not shared: %s, then %s", second, fp)
	}
}
