package media

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lianmai/relay/bufpool"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"go.uber.org/goleak"
)

// blockedRTCP stands for pion's RTPSender as a down track's RTCP source:
// ReadRTCP blocks until the test ends it, counting the calls, so that a
// test sees whether pion's RTCP reader was started.
type blockedRTCP struct {
	calls atomic.Int32
	done  chan struct{}
}

func (b *blockedRTCP) ReadRTCP() ([]rtcp.Packet, interceptor.Attributes, error) {
	b.calls.Add(1)
	<-b.done
	return nil, nil, io.EOF
}

// TestSubRTCPByReaders: a direct sub connection's NACK, sent as SRTCP
// from the subscriber's address to the relay's port (direct ingest on),
// is decrypted and served by the socket reader: the retransmission
// arrives and carries the payload asked for, and no pion RTCP reader
// runs. The same SRTCP datagram replayed, and a forged one, are not
// served (they go to pion, which drops them too). When the connection's
// pair turns to TCP, pion's RTCP reader starts for its track.
func TestSubRTCPByReaders(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), peerDeadline)
	defer cancel()

	fx := newReadersFixture(ctx, t)
	defer fx.close()
	b, d, relayAddr, client, clientAddr := fx.b, fx.d, fx.relayAddr, fx.client, fx.clientAddr

	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	up := NewUpTrack(UpTrackParams{ID: "t_1", Kind: "audio", StreamID: "p_pub", Metrics: m, Batch: b})
	defer up.ReleaseHistory()
	sc := NewSubConn(SubConnParams{Batch: b})
	down := NewDownTrack(up, DownTrackParams{Sub: sc})
	down.bound.Store(&binding{ssrc: testOutSSRC, pt: testOutPT, w: &refuseWriter{}})
	pionRTCP := &blockedRTCP{done: make(chan struct{})}
	defer close(pionRTCP.done)
	if !down.Subscribe(pionRTCP) {
		t.Fatal("Subscribe refused on a live track")
	}
	defer down.Unsubscribe()
	if down.rtcpLoopOn.Load() {
		t.Fatal("pion's RTCP reader started before the connection's path was known")
	}
	if err := sc.SetKeys(srtp.ProtectionProfileAeadAes128Gcm, testKeys(testKey, testSalt)); err != nil {
		t.Fatal(err)
	}
	if err := sc.SetRoute(relayAddr, clientAddr, true, false); err != nil {
		t.Fatal(err)
	}
	if !sc.Direct() || !sc.ReadsRTCPDirectly() {
		t.Fatalf("direct %v, RTCP by the readers %v: want both", sc.Direct(), sc.ReadsRTCPDirectly())
	}

	// Three packets out; the subscriber learns their sequence numbers.
	payloads := [][]byte{{0xfc, 1, 1}, {0xfc, 2, 2, 2}, {0xfc, 3}}
	for i, p := range payloads {
		raw, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(100 + i),
			Timestamp: uint32(480 * i), SSRC: 0x1234}, Payload: p}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		pkt := bufpool.Get()
		up.Forward(pkt, copy(pkt.Buf(), raw))
	}
	dec, err := srtp.CreateContext(testKey, testSalt, srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		t.Fatal(err)
	}
	readRTP := func() *rtp.Packet {
		t.Helper()
		buf := make([]byte, 1500)
		n, err := client.Read(buf)
		if err != nil {
			t.Fatalf("the subscriber's socket: %v", err)
		}
		plain, err := dec.DecryptRTP(nil, buf[:n], nil)
		if err != nil {
			t.Fatalf("decrypt what the relay sent: %v", err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(plain); err != nil {
			t.Fatal(err)
		}
		return &p
	}
	var seqs []uint16
	for range payloads {
		seqs = append(seqs, readRTP().SequenceNumber)
	}

	// The subscriber NACKs the second, over SRTCP with its own key (the
	// relay's remote key).
	enc, err := srtp.CreateContext(testKey, testSalt, srtp.ProtectionProfileAeadAes128Gcm)
	if err != nil {
		t.Fatal(err)
	}
	plainNACK, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: 7},
		&rtcp.TransportLayerNack{SenderSSRC: 7, MediaSSRC: testOutSSRC, Nacks: []rtcp.NackPair{{PacketID: seqs[1]}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	nack, err := enc.EncryptRTCP(nil, plainNACK, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.WriteToUDPAddrPort(nack, relayAddr); err != nil {
		t.Fatal(err)
	}
	rtx := readRTP()
	if rtx.SequenceNumber != seqs[1] || !bytes.Equal(rtx.Payload, payloads[1]) {
		t.Fatalf("retransmission seq %d payload % x, want seq %d payload % x", rtx.SequenceNumber, rtx.Payload, seqs[1], payloads[1])
	}
	// The reader counts the datagram once it has served it, which is
	// after the retransmission left: wait for the count.
	for d.Stats().SubRTCP == 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	if got := d.Stats().SubRTCP; got != 1 {
		t.Errorf("%d subscriber RTCP datagrams served by the readers, want 1", got)
	}
	if down.rtcpLoopOn.Load() || pionRTCP.calls.Load() != 0 {
		t.Error("pion's RTCP reader ran for a direct connection")
	}

	// The same datagram again (a replay) and a forgery (an RTCP header and
	// noise): the readers serve neither and leave both to pion's side,
	// where no ICE connection has the client's address here (the test
	// has no ICE): they are dropped as unrouted.
	forged := append([]byte{0x81, rtpfbType, 0, 3}, bytes.Repeat([]byte{0x5a}, 40)...)
	left := func() uint64 { st := d.Stats(); return st.Handoffs + st.Unrouted }
	before := left()
	for _, dg := range [][]byte{nack, forged} {
		if _, err := client.WriteToUDPAddrPort(dg, relayAddr); err != nil {
			t.Fatal(err)
		}
	}
	for left() < before+2 {
		if ctx.Err() != nil {
			t.Fatalf("the replay and the forgery were not left to pion's side (left %d, were %d)", left(), before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := d.Stats().SubRTCP; got != 1 {
		t.Errorf("%d subscriber RTCP datagrams served after a replay and a forgery, want still 1", got)
	}
	if served := counterValue(t, m.NACKsServed); served != 1 {
		t.Errorf("NACKs served %v, want 1", served)
	}

	// The pair turns to TCP: pion carries the RTCP, and its reader starts.
	if err := sc.SetRoute(relayAddr, clientAddr, false, false); err == nil {
		t.Fatal("a TCP pair was taken as direct")
	}
	if sc.ReadsRTCPDirectly() {
		t.Error("the readers still take the RTCP of a TCP pair")
	}
	for pionRTCP.calls.Load() == 0 {
		if ctx.Err() != nil {
			t.Fatal("pion's RTCP reader did not start once the pair was TCP")
		}
		time.Sleep(time.Millisecond)
	}
	if (*d.subs.Load())[netip.AddrPortFrom(clientAddr.Addr().Unmap(), clientAddr.Port())] != nil {
		t.Error("the connection is still registered with the readers")
	}
}

// TestSubRTCPWithoutIngest: without direct ingest nobody but pion reads
// the port, so a down track on a SubConn gets pion's RTCP reader at once.
func TestSubRTCPWithoutIngest(t *testing.T) {
	defer goleak.VerifyNone(t)
	mux, err := ListenUDP("127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	up := NewUpTrack(UpTrackParams{ID: "t_1", Kind: "audio", StreamID: "p_pub", Metrics: m, Batch: BatchOf(mux)})
	down := NewDownTrack(up, DownTrackParams{Sub: NewSubConn(SubConnParams{Batch: BatchOf(mux)})})
	pionRTCP := &blockedRTCP{done: make(chan struct{})}
	defer close(pionRTCP.done)
	down.Subscribe(pionRTCP)
	defer down.Unsubscribe()
	if !down.rtcpLoopOn.Load() {
		t.Error("no direct ingest, and pion's RTCP reader did not start")
	}
}

// readersFixture is the relay's port with direct ingest (one reader) and
// a client's plain UDP socket on loopback, its reads bounded by the
// test's deadline. close it after use (before goleak's check).
type readersFixture struct {
	mux        ice.UDPMux
	b          *Batch
	d          *Direct
	relayAddr  netip.AddrPort
	client     *net.UDPConn
	clientAddr netip.AddrPort
}

func newReadersFixture(ctx context.Context, t *testing.T) *readersFixture {
	t.Helper()
	mux, err := ListenUDPWith("127.0.0.1:0", true, ListenOptions{Direct: true, Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		mux.Close()
		t.Fatal(err)
	}
	deadline, _ := ctx.Deadline()
	_ = client.SetReadDeadline(deadline)
	b := BatchOf(mux)
	return &readersFixture{mux: mux, b: b, d: DirectOf(mux), relayAddr: (*b.conns.Load())[0].LocalAddr().(*net.UDPAddr).AddrPort(),
		client: client, clientAddr: client.LocalAddr().(*net.UDPAddr).AddrPort()}
}

func (f *readersFixture) close() {
	f.client.Close()
	f.mux.Close()
}
