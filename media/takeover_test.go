package media

import (
	"context"
	"errors"
	"testing"

	"github.com/pion/srtp/v3"
	"github.com/pion/stun/v4"
	"go.uber.org/goleak"
)

// TestTakeOverSTUN: a taken-over connection's client gets answers to its
// ICE checks from the relay: a check with the wrong password is not
// answered, one with the right credentials is, with the client's address
// and the connection's integrity; a datagram that is neither STUN nor
// SRTCP (a late DTLS record) is dropped, not handed to pion; after Stop
// pion's writes to the client go out again. A connection that is not
// direct cannot be taken over.
func TestTakeOverSTUN(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), peerDeadline)
	defer cancel()
	fx := newReadersFixture(ctx, t)
	defer fx.close()
	b, d, relayAddr, client, clientAddr := fx.b, fx.d, fx.relayAddr, fx.client, fx.clientAddr

	creds := ICECreds{LocalUfrag: "relayUfrag", LocalPwd: "relay-password-of-22-chars", RemoteUfrag: "cli1"}
	sc := NewSubConn(SubConnParams{Batch: b})
	if err := sc.TakeOver(creds); !errors.Is(err, ErrNotTakeable) {
		t.Fatalf("TakeOver of a connection that is not direct: %v, want ErrNotTakeable", err)
	}
	if err := sc.SetKeys(srtp.ProtectionProfileAeadAes128Gcm, testKeys(testKey, testSalt)); err != nil {
		t.Fatal(err)
	}
	if err := sc.SetRoute(relayAddr, clientAddr, true, false); err != nil {
		t.Fatal(err)
	}
	if err := sc.TakeOver(creds); err != nil {
		t.Fatal(err)
	}
	if !b.silenced(clientAddr) {
		t.Error("pion's writes to a taken-over client are not dropped")
	}

	check := func(pwd string) stun.Message {
		t.Helper()
		m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(creds.LocalUfrag+":"+creds.RemoteUfrag),
			stun.NewShortTermIntegrity(pwd), stun.Fingerprint)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.WriteToUDPAddrPort(m.Raw, relayAddr); err != nil {
			t.Fatal(err)
		}
		return *m
	}
	handoffs := d.Stats().Handoffs
	check("not-the-relay-password!!")
	if _, err := client.WriteToUDPAddrPort(append([]byte{22, 0xfe, 0xfd}, make([]byte, 30)...), relayAddr); err != nil {
		t.Fatal(err)
	}
	good := check(creds.LocalPwd)
	buf := make([]byte, 1500)
	n, err := client.Read(buf)
	if err != nil {
		t.Fatalf("no answer to the client's check: %v", err)
	}
	resp := &stun.Message{Raw: buf[:n]}
	if err := resp.Decode(); err != nil {
		t.Fatal(err)
	}
	if resp.Type != stun.BindingSuccess || resp.TransactionID != good.TransactionID {
		t.Fatalf("answer %v to transaction %x, want a binding success to the right check %x", resp.Type, resp.TransactionID, good.TransactionID)
	}
	if err := stun.NewShortTermIntegrity(creds.LocalPwd).Check(resp); err != nil {
		t.Errorf("the answer's integrity: %v", err)
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(resp); err != nil || xor.Port != int(clientAddr.Port()) || !xor.IP.Equal(clientAddr.Addr().AsSlice()) {
		t.Errorf("mapped address %v (%v), want the client's %v", xor, err, clientAddr)
	}
	if n := sc.checksAnswered(); n != 1 {
		t.Errorf("%d checks answered, want 1", n)
	}
	if h := d.Stats().Handoffs; h != handoffs {
		t.Errorf("%d datagrams of a taken-over client handed to pion, want none", h-handoffs)
	}
	sc.Stop()
	if b.silenced(clientAddr) {
		t.Error("pion's writes to the client are still dropped after Stop")
	}
}
