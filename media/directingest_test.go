package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// directKeys are a publisher's SRTP keys (AES-128-GCM, the relay's first
// choice) as the relay holds them: the publisher writes with "remote".
func directKeys(t testing.TB) (srtp.SessionKeys, srtp.ProtectionProfile) {
	t.Helper()
	profile := srtp.ProtectionProfileAeadAes128Gcm
	keyLen, _ := profile.KeyLen()
	saltLen, _ := profile.SaltLen()
	return srtp.SessionKeys{
		RemoteMasterKey:  bytes.Repeat([]byte{0x11}, keyLen),
		RemoteMasterSalt: bytes.Repeat([]byte{0x22}, saltLen),
	}, profile
}

// publisherContext is the publisher's side of directKeys: pion/srtp, as
// a pion or browser publisher encrypts (opts: srtp.Cryptex for a
// publisher that encrypts its header extensions, RFC 9335).
func publisherContext(t testing.TB, opts ...srtp.ContextOption) *srtp.Context {
	t.Helper()
	keys, profile := directKeys(t)
	c, err := srtp.CreateContext(keys.RemoteMasterKey, keys.RemoteMasterSalt, profile, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openDirect registers a publisher at 127.0.0.1:40000 with directKeys
// (with cryptex negotiated or not), its stream testInSSRC going to up.
func openDirect(t testing.TB, up *UpTrack, cryptex bool) (*Direct, *DirectConn, netip.AddrPort) {
	t.Helper()
	d := newDirect()
	keys, profile := directKeys(t)
	addr := netip.MustParseAddrPort("127.0.0.1:40000")
	dc, err := d.Open(addr, keys, profile, cryptex)
	if err != nil {
		t.Fatal(err)
	}
	dc.AddTrack(testInSSRC, up)
	return d, dc, addr
}

func encrypt(t testing.TB, c *srtp.Context, raw []byte) []byte {
	t.Helper()
	out, err := c.EncryptRTP(nil, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDirectIngestPath: which datagrams the socket reader takes (an
// authenticated RTP packet of a registered address and SSRC, decrypted
// byte-identical into the track) and which it leaves to pion (STUN,
// DTLS, RTCP, another address, another SSRC, a forgery, a replay, after
// Close or RemoveTrack).
func TestDirectIngestPath(t *testing.T) {
	ws := []*recordWriter{{}}
	f := newForwardFixture(t, 1, func(int) webrtc.TrackLocalWriter { return ws[0] })
	d, dc, addr := openDirect(t, f.up, false)
	keys, profile := directKeys(t)
	if _, err := d.Open(addr, keys, profile, false); err == nil {
		t.Error("a second Open at the same address succeeded, want ErrDirectAddrInUse")
	}
	pubCtx := publisherContext(t)

	raw := inPacket(t, testInSSRC, 10, 4800)
	enc := encrypt(t, pubCtx, raw)
	if !d.ingest(enc, addr) {
		t.Fatal("a registered publisher's packet was not ingested")
	}
	got := ws[0].take()
	if len(got) != 1 {
		t.Fatalf("the subscriber got %d packets, want 1", len(got))
	}
	want, _ := parseRTP(raw)
	if p := got[0].payload; !bytes.Equal(p, want.payload(raw)) {
		t.Errorf("payload % x, want % x", p, want.payload(raw))
	}

	sr, err := (&rtcp.SenderReport{SSRC: testInSSRC}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Clone(encrypt(t, pubCtx, inPacket(t, testInSSRC, 12, 5760)))
	forged[len(forged)-1] ^= 1
	stun := []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	dtls := append([]byte{22, 0xfe, 0xfd}, make([]byte, 20)...)
	left := []struct {
		name string
		b    []byte
		addr netip.AddrPort
	}{
		{"STUN", stun, addr},
		{"DTLS", dtls, addr},
		{"RTCP", sr, addr},
		{"another address", encrypt(t, pubCtx, inPacket(t, testInSSRC, 11, 5280)), netip.MustParseAddrPort("127.0.0.1:40001")},
		{"another SSRC", encrypt(t, pubCtx, inPacket(t, testInSSRC+1, 1, 0)), addr},
		{"a forgery", forged, addr},
		{"a replay", enc, addr},
		{"too short", enc[:11], addr},
	}
	for _, tt := range left {
		t.Run(tt.name, func(t *testing.T) {
			if d.ingest(tt.b, tt.addr) {
				t.Error("ingested, want it left to pion")
			}
		})
	}
	if got := d.Stats().AuthFails; got != 2 {
		t.Errorf("auth failures %d, want 2 (the forgery and the replay)", got)
	}
	if got := d.Stats().Packets; got != 1 {
		t.Errorf("packets ingested %d, want 1", got)
	}
	if n := len(ws[0].take()); n != 0 {
		t.Errorf("the subscriber got %d packets from datagrams left to pion", n)
	}

	dc.RemoveTrack(f.up)
	if d.ingest(encrypt(t, pubCtx, inPacket(t, testInSSRC, 13, 6240)), addr) {
		t.Error("ingested after RemoveTrack")
	}
	dc.AddTrack(testInSSRC, f.up)
	dc.Close()
	if d.ingest(encrypt(t, pubCtx, inPacket(t, testInSSRC, 14, 6720)), addr) {
		t.Error("ingested after Close")
	}
	if _, err := d.Open(addr, keys, profile, false); err != nil {
		t.Errorf("Open after Close: %v", err)
	}
}

// TestDirectIngestZeroAllocs: reading a publisher's packet off the socket
// path into the track (decryption, loss statistics, fan-out) allocates
// nothing.
func TestDirectIngestZeroAllocs(t *testing.T) {
	for _, cryptex := range []bool{false, true} {
		t.Run(fmt.Sprintf("cryptex=%v", cryptex), func(t *testing.T) {
			f := newForwardFixture(t, 4, func(int) webrtc.TrackLocalWriter { return discardWriter{} })
			f.up.rx = newReceiveStats(48000)
			f.up.levelExt = 1
			d, _, addr := openDirect(t, f.up, cryptex)
			var opts []srtp.ContextOption
			if cryptex {
				opts = append(opts, srtp.Cryptex(srtp.CryptexModeEnabled))
			}
			pubCtx := publisherContext(t, opts...)
			// Encrypted ahead: the publisher's cost is not the relay's.
			const runs = 500
			pkts := make([][]byte, 2*historySize+runs+1)
			for i := range pkts {
				pkts[i] = encrypt(t, pubCtx, inPacket(t, testInSSRC, uint16(i), uint32(i*testFrameTS)))
			}
			i := 0
			step := func() {
				if !d.ingest(pkts[i], addr) {
					t.Fatalf("packet %d not ingested", i)
				}
				i++
			}
			for range 2 * historySize {
				step()
			}
			if allocs := testing.AllocsPerRun(runs, step); allocs != 0 {
				t.Errorf("direct ingest: %v allocations per packet, want 0", allocs)
			}
		})
	}
}

// TestSocketReaders: with direct ingest a socket and its SO_REUSEPORT
// siblings are read by the relay's readers; a datagram that is not a
// registered publisher's media reaches the ICE connection that wrote to
// its source (the relay's UDP mux) unchanged, whichever socket the kernel
// gave it to, even after a read deadline was set on the socket. Nothing
// else may read the socket; closing the mux ends the readers and the
// connection's read.
func TestSocketReaders(t *testing.T) {
	defer goleak.VerifyNone(t)
	o := ListenOptions{Direct: true, Readers: 3, direct: newDirect()}
	bc, err := listenBatchConn("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, &Batch{}, o)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.mux.Close()
	if got := len(bc.rd.socks); got != 3 {
		t.Errorf("%d sockets, want 3 (SO_REUSEPORT on Linux)", got)
	}
	// A deadline someone sets on the socket does not stop its reader.
	if err := bc.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	conn, err := bc.mux.GetConn("ufrag", bc.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// Several senders (flows), so that the kernel spreads them: all 16 on
	// one of 3 sockets by chance is a 1 in 14 million event. The ICE
	// connection writes to each first, as an agent's check would: that
	// makes the address its.
	const senders = 16
	var conns []*net.UDPConn
	for range senders {
		c, err := net.DialUDP("udp4", nil, bc.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := conn.WriteTo([]byte("check"), c.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		msg := make([]byte, 20)
		binary.BigEndian.PutUint32(msg, uint32(i))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uint32]bool{}
	b := make([]byte, bufpool.Size)
	for range senders {
		n, from, err := conn.(*muxHandle).ReadFromAddrPort(b)
		if err != nil {
			t.Fatalf("read: %v (a datagram never reached the ICE connection)", err)
		}
		i := binary.BigEndian.Uint32(b)
		if n != 20 || int(i) >= senders || from != conns[i].LocalAddr().(*net.UDPAddr).AddrPort() {
			t.Errorf("read %d bytes (sender %d) from %v, want 20 from that sender", n, i, from)
			continue
		}
		seen[i] = true
	}
	if len(seen) != senders {
		t.Errorf("the connection read %d distinct datagrams, want %d", len(seen), senders)
	}
	if got := o.direct.Stats().Handoffs; got != senders {
		t.Errorf("handoffs %d, want %d", got, senders)
	}
	busy := 0
	for i := range bc.rd.reads {
		if bc.rd.reads[i].Load() > 0 {
			busy++
		}
	}
	if busy < 2 {
		t.Errorf("%d of %d readers got datagrams from %d flows: the kernel did not spread them", busy, len(bc.rd.reads), senders)
	}
	if _, _, err := bc.ReadFrom(b); !errors.Is(err, errReadersOwnReads) {
		t.Errorf("ReadFrom on the socket: %v, want errReadersOwnReads", err)
	}
	if _, _, err := bc.ReadFromAddrPort(b); !errors.Is(err, errReadersOwnReads) {
		t.Errorf("ReadFromAddrPort on the socket: %v, want errReadersOwnReads", err)
	}
	if err := bc.mux.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := conn.ReadFrom(b); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after the mux closed: %v, want net.ErrClosed", err)
	}
}

// TestDirectIngestCryptex: a publisher that encrypts its header
// extensions (RFC 9335, which pion negotiates when both ends offer it)
// is ingested when its connection negotiated cryptex, its audio level
// read from the decrypted extension; without the negotiation its packets
// do not authenticate and are left to pion.
func TestDirectIngestCryptex(t *testing.T) {
	for _, negotiated := range []bool{true, false} {
		t.Run(fmt.Sprintf("negotiated=%v", negotiated), func(t *testing.T) {
			ws := []*recordWriter{{}}
			f := newForwardFixture(t, 1, func(int) webrtc.TrackLocalWriter { return ws[0] })
			f.up.levelExt = 1 // inPacket's audio level extension: level 30
			d, _, addr := openDirect(t, f.up, negotiated)
			pubCtx := publisherContext(t, srtp.Cryptex(srtp.CryptexModeEnabled))
			raw := inPacket(t, testInSSRC, 10, 4800)
			enc := encrypt(t, pubCtx, raw)
			if p := binary.BigEndian.Uint16(enc[12:]); p != 0xc0de {
				t.Fatalf("extension profile %#x on the wire, want cryptex's 0xc0de", p)
			}
			if got := d.ingest(enc, addr); got != negotiated {
				t.Fatalf("ingested %v, want %v", got, negotiated)
			}
			if !negotiated {
				if d.Stats().AuthFails != 1 {
					t.Errorf("auth failures %d, want 1", d.Stats().AuthFails)
				}
				return
			}
			got := ws[0].take()
			want, _ := parseRTP(raw)
			if len(got) != 1 || !bytes.Equal(got[0].payload, want.payload(raw)) {
				t.Fatalf("the subscriber got %d packets, want the one sent, byte-identical", len(got))
			}
			if lv := f.up.Level(Now(), int64(time.Second)); lv <= 0 {
				t.Errorf("audio level %v after a packet at -30 dBov, want above 0", lv)
			}
		})
	}
}

// TestDirectConnMove: a connection whose selected pair changed is taken
// at its new address, its SRTP context (and the stream's place in it)
// moving along; its old address goes to pion; an address another
// connection holds is refused; a closed connection cannot move.
func TestDirectConnMove(t *testing.T) {
	ws := []*recordWriter{{}}
	f := newForwardFixture(t, 1, func(int) webrtc.TrackLocalWriter { return ws[0] })
	d, dc, addr := openDirect(t, f.up, false)
	pubCtx := publisherContext(t)
	if !d.ingest(encrypt(t, pubCtx, inPacket(t, testInSSRC, 1, 480)), addr) {
		t.Fatal("not ingested before the move")
	}
	moved := netip.MustParseAddrPort("127.0.0.1:40002")
	if err := dc.Move(moved); err != nil {
		t.Fatal(err)
	}
	if d.ingest(encrypt(t, pubCtx, inPacket(t, testInSSRC, 2, 960)), addr) {
		t.Error("ingested from the old address after the move")
	}
	if !d.ingest(encrypt(t, pubCtx, inPacket(t, testInSSRC, 3, 1440)), moved) {
		t.Error("not ingested from the new address")
	}
	keys, profile := directKeys(t)
	other, err := d.Open(addr, keys, profile, false)
	if err != nil {
		t.Fatalf("the old address is free again, yet: %v", err)
	}
	if err := dc.Move(addr); !errors.Is(err, ErrDirectAddrInUse) {
		t.Errorf("move onto another connection's address: %v, want ErrDirectAddrInUse", err)
	}
	other.Close()
	dc.Close()
	if err := dc.Move(addr); err == nil {
		t.Error("a closed connection moved")
	}
	if got := len(ws[0].take()); got != 2 {
		t.Errorf("the subscriber got %d packets, want 2", got)
	}
}

// A port already in use fails with direct ingest as without it: the
// readers' SO_REUSEPORT must not let a second relay on the same port (the
// same user's) join the first one's group and share its flows.
func TestSocketReadersPortInUse(t *testing.T) {
	first, err := listenBatchConn("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, &Batch{}, ListenOptions{Direct: true, Readers: 2, direct: newDirect()})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	addr := first.LocalAddr().(*net.UDPAddr)
	second, err := listenBatchConn("udp4", addr, &Batch{}, ListenOptions{Direct: true, Readers: 2, direct: newDirect()})
	if err == nil {
		_ = second.Close()
		t.Fatalf("a second direct-ingest socket bound %v, which the first one holds", addr)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second bind: %v, want address in use", err)
	}
}
