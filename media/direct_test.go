package media

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

// testKey and testSalt are an AES-128-GCM master key and salt.
var testKey, testSalt = make([]byte, 16), make([]byte, 12)

// testKeys are the session keys of a sub connection made of key and salt
// (both directions alike).
func testKeys(key, salt []byte) srtp.SessionKeys {
	return srtp.SessionKeys{LocalMasterKey: key, LocalMasterSalt: salt, RemoteMasterKey: key, RemoteMasterSalt: salt}
}

// directFixture is a forwardFixture on the relay's own UDP port whose
// subscribers are all on the direct path to a loopback socket that never
// reads (the kernel drops what overflows it). Their pion writers refuse
// every packet: a packet that missed the direct path is a drop, and
// fixtureAllocs's count of packets written fails.
func directFixture(tb testing.TB, subs, threshold, procs int) (*forwardFixture, []*SubConn) {
	tb.Helper()
	mux, err := ListenUDP("127.0.0.1:0", true)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { mux.Close() })
	b := BatchOf(mux)
	b.fan.mu.Lock()
	b.fan.threshold, b.fan.procs = threshold, procs
	b.fan.mu.Unlock()
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sink.Close() })
	local := (*b.conns.Load())[0].LocalAddr().(*net.UDPAddr).AddrPort()
	m, err := NewMetrics(nil)
	if err != nil {
		tb.Fatal(err)
	}
	f := &forwardFixture{m: m, up: NewUpTrack(UpTrackParams{ID: "t_1", Kind: "audio", StreamID: "p_pub", Metrics: m, Batch: b}),
		first: make([]int, subs)}
	tb.Cleanup(f.up.hist.clear)
	var scs []*SubConn
	for i := range subs {
		sc := NewSubConn(SubConnParams{Batch: b})
		if err := sc.SetKeys(srtp.ProtectionProfileAeadAes128Gcm, testKeys(testKey, testSalt)); err != nil {
			tb.Fatal(err)
		}
		if err := sc.SetRoute(local, sink.LocalAddr().(*net.UDPAddr).AddrPort(), true, false); err != nil {
			tb.Fatal(err)
		}
		d := NewDownTrack(f.up, DownTrackParams{Sub: sc})
		d.bound.Store(&binding{ssrc: testOutSSRC + uint32(i), pt: testOutPT, w: &refuseWriter{}})
		if !f.up.addSubscriber(d) {
			tb.Fatal("addSubscriber refused on a live track")
		}
		f.downs = append(f.downs, d)
		scs = append(scs, sc)
	}
	return f, scs
}

// TestDirectZeroAllocs: the direct path forwards without allocating: in a
// batch (several subscribers, the reader's and a worker's), alone (one
// subscriber: a datagram of its own), and a NACK repair.
func TestDirectZeroAllocs(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, c := range []struct{ subs, threshold, procs int }{{1, 0, 0}, {4, 0, 0}, {50, 0, 0}, {8, 4, 2}} {
		t.Run(fmt.Sprintf("subs=%d,threshold=%d", c.subs, c.threshold), func(t *testing.T) {
			f, _ := directFixture(t, c.subs, c.threshold, c.procs)
			if allocs := fixtureAllocs(t, f, c.subs); allocs != 0 {
				t.Errorf("direct path: %v allocations per packet, want 0", allocs)
			}
		})
	}
	t.Run("nack", func(t *testing.T) {
		f, _ := directFixture(t, 2, 0, 0)
		fixtureAllocs(t, f, 2) // fills the history
		d := f.downs[0]
		// The last packet fixtureAllocs sent (upstream 2*historySize+1000),
		// as the subscriber numbers it.
		seq := uint16(2*historySize+1000) + uint16(d.mung.seqOffset.Load())
		before := counterValue(t, f.m.NACKsServed)
		allocs := testing.AllocsPerRun(100, func() { d.serveNACK(seq) })
		if allocs != 0 {
			t.Errorf("NACK repair on the direct path: %v allocations, want 0", allocs)
		}
		if served := counterValue(t, f.m.NACKsServed) - before; served != 101 {
			t.Errorf("NACKs served %v, want 101", served)
		}
		if drops := counterValue(t, f.m.Dropped(DropWriteFailed)); drops != 0 {
			t.Errorf("%v write failures: the repair missed the direct path", drops)
		}
	})
}

// TestDirectRoute: a sub connection goes direct only with keys and a UDP
// pair on one of the relay's batched sockets; otherwise (each case an
// error saying why) its packets take pion's writer.
func TestDirectRoute(t *testing.T) {
	defer goleak.VerifyNone(t)
	mux, err := ListenUDP("127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	b := BatchOf(mux)
	local := (*b.conns.Load())[0].LocalAddr().(*net.UDPAddr).AddrPort()
	remote := netip.MustParseAddrPort("127.0.0.1:9")
	other := netip.AddrPortFrom(local.Addr(), local.Port()+1)
	for _, c := range []struct {
		name          string
		batch         *Batch
		keys          bool
		local, remote netip.AddrPort
		udp, relayed  bool
		stop          bool
		wantErr       error
		wantDirect    bool
	}{
		{name: "direct", batch: b, keys: true, local: local, remote: remote, udp: true, wantDirect: true},
		{name: "no keys yet", batch: b, local: local, remote: remote, udp: true},
		{name: "tcp", batch: b, keys: true, local: local, remote: remote, wantErr: ErrNotOurPort},
		{name: "turn", batch: b, keys: true, local: local, remote: remote, udp: true, relayed: true, wantErr: ErrNotOurPort},
		{name: "another socket", batch: b, keys: true, local: other, remote: remote, udp: true, wantErr: ErrNotOurPort},
		{name: "ipv6 client", batch: b, keys: true, local: local, remote: netip.MustParseAddrPort("[::1]:9"), udp: true, wantErr: ErrNotOurPort},
		{name: "no pair", batch: b, keys: true, wantErr: ErrNotOurPort},
		{name: "no batched port", keys: true, local: local, remote: remote, udp: true, wantErr: ErrNoBatch},
		{name: "stopped", batch: b, keys: true, local: local, remote: remote, udp: true, stop: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc := NewSubConn(SubConnParams{Batch: c.batch})
			if c.keys {
				err := sc.SetKeys(srtp.ProtectionProfileAeadAes128Gcm, testKeys(testKey, testSalt))
				if c.batch == nil {
					if !errors.Is(err, ErrNoBatch) {
						t.Fatalf("SetKeys: %v, want ErrNoBatch", err)
					}
				} else if err != nil {
					t.Fatal(err)
				}
			}
			if err := sc.SetRoute(c.local, c.remote, c.udp, c.relayed); !errors.Is(err, c.wantErr) {
				t.Fatalf("SetRoute: %v, want %v", err, c.wantErr)
			}
			if c.stop {
				sc.Stop()
			}
			if sc.Direct() != c.wantDirect {
				t.Fatalf("Direct() = %v, want %v", sc.Direct(), c.wantDirect)
			}
			// A packet goes direct or through pion's writer, never both.
			f := newForwardFixture(t, 0, nil)
			rec := &recordWriter{}
			d := NewDownTrack(f.up, DownTrackParams{Sub: sc})
			d.bound.Store(&binding{ssrc: testOutSSRC, pt: testOutPT, w: rec})
			f.up.addSubscriber(d)
			f.send(inPacket(t, testInSSRC, 1, 0))
			if n := len(rec.take()); (n == 0) != c.wantDirect {
				t.Errorf("pion's writer got %d packets; direct %v", n, c.wantDirect)
			}
			if got := counterValue(t, f.m.PacketsOut); got != 1 {
				t.Errorf("PacketsOut %v, want 1", got)
			}
		})
	}
	t.Run("bad key", func(t *testing.T) {
		sc := NewSubConn(SubConnParams{Batch: b})
		if err := sc.SetKeys(srtp.ProtectionProfileAeadAes128Gcm, testKeys(testKey[:3], testSalt)); err == nil {
			t.Fatal("SetKeys took a 3-byte key")
		}
		if sc.SetRoute(local, remote, true, false) != nil || sc.Direct() {
			t.Fatal("direct without keys")
		}
	})
}

// TestDirectPadding: a packet with RTP padding leaves the direct path as
// pion would write it: the same bytes before encryption.
func TestDirectPadding(t *testing.T) {
	sc := NewSubConn(SubConnParams{Batch: &Batch{}})
	if err := sc.SetKeys(srtp.ProtectionProfileAeadAes128Gcm, testKeys(testKey, testSalt)); err != nil {
		t.Fatal(err)
	}
	h := rtp.Header{Version: 2, Padding: true, PaddingSize: 4, PayloadType: testOutPT, SequenceNumber: 5, Timestamp: 7, SSRC: testOutSSRC}
	payload := []byte{0xfc, 1, 2, 3, 4, 5}
	dst := make([]byte, 1500)
	n := sc.encrypt(dst, &h, payload)
	if n == 0 {
		t.Fatal("encrypt refused the packet")
	}
	dec, err := srtp.CreateContext(testKey, testSalt, srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := dec.DecryptRTP(nil, dst[:n], nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, want) {
		t.Errorf("decrypted % x, want pion's marshal % x", plain, want)
	}
	if sc.encrypt(make([]byte, 20), &h, payload) != 0 {
		t.Error("encrypt wrote past a too-small buffer")
	}
}

var _ webrtc.TrackLocalWriter = (*refuseWriter)(nil)

// BenchmarkForwardDirect: one publisher packet in, written to N down
// tracks on the direct path: the relay's code, the SRTP encryption into
// the batch (AES-128-GCM) and the sendmmsg calls to a loopback socket,
// per input packet and per delivery. BenchmarkForward is the same
// without SRTP or socket.
func BenchmarkForwardDirect(b *testing.B) {
	for _, subs := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			f, _ := directFixture(b, subs, 0, 0)
			benchForward(b, f, subs)
			if d := counterValue(b, f.m.Dropped(DropWriteFailed)); d != 0 {
				b.Fatalf("%v writes failed: not every delivery took the direct path", d)
			}
		})
	}
}
