package media

import (
	"errors"
	"maps"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/stun/v4"
)

// Takeover (issue 19, a prototype): once a sub connection is direct and
// its subscriber's RTCP is read by the socket readers, nothing on its
// media path is pion's but the ICE checks. Taking it over, the relay
// answers the client's ICE checks itself (consent freshness, RFC 7675)
// and drops what pion writes to the client, so that pion's connection can
// be closed without the client noticing: its goroutines, SRTP sessions
// and buffers go, the client keeps its DTLS session (its keys are the
// relay's already) and its ICE pair.

// ICECreds are a connection's ICE credentials as its descriptions give
// them: the relay's (local) and the client's username fragment.
type ICECreds struct {
	LocalUfrag, LocalPwd, RemoteUfrag string
}

// taken is a taken-over connection's ICE state, read by its flow's
// socket reader.
type taken struct {
	creds  ICECreds
	integ  stun.MessageIntegrity
	checks atomic.Uint64 // checks answered
	heard  atomic.Int64  // Now() of the last check answered or SRTCP served from the client
}

// takeoverSRTCPIndex is where the relay's SRTCP index of a stream starts
// once the connection is taken over. Pion's own SRTCP context, with the
// same key, sent the stream's sender reports before, from index 0: the
// relay's must never reuse one of its indexes (with AES-GCM a key and
// nonce used twice give the key stream away), and pion sends about one a
// second for the few seconds before a takeover, far fewer than 2^16. A
// jump forward is what the client's replay window accepts.
const takeoverSRTCPIndex = 1 << 16

// writeOwnRTCP sends sr to the client of a taken-over connection,
// encrypted with the connection's own SRTCP context.
func (s *SubConn) writeOwnRTCP(sr *rtcp.SenderReport) error {
	r := s.route.Load()
	if r == nil {
		return ErrNotTakeable
	}
	plain, err := sr.Marshal()
	if err != nil {
		return err
	}
	s.mu.Lock()
	if _, ok := s.ctx.Index(sr.SSRC); !ok {
		s.ctx.SetIndex(sr.SSRC, takeoverSRTCPIndex)
	}
	out, err := s.ctx.EncryptRTCP(nil, plain, nil)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = r.conn.writeOwn(out, r.addr)
	return err
}

// LastHeard is when the client of a taken-over connection was last heard
// (a valid ICE check or SRTCP datagram; the takeover itself counts), in
// Now() units; 0 if s is not taken over. The room layer declares the
// connection failed when it is too long ago, as pion's ICE agent would.
func (s *SubConn) LastHeard() int64 {
	if t := s.taken.Load(); t != nil {
		return t.heard.Load()
	}
	return 0
}

// ErrNotTakeable: the connection is not direct with its RTCP read by the
// socket readers, so pion cannot be let go.
var ErrNotTakeable = errors.New("media: the sub connection is not direct with its RTCP on the socket readers: pion keeps it")

// TakeOver makes the relay answer the client's ICE checks with creds and
// drop pion's writes to the client from now on. Close pion's connection
// after it.
func (s *SubConn) TakeOver(creds ICECreds) error {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	if !s.in.at.IsValid() || s.stopped {
		return ErrNotTakeable
	}
	t := &taken{creds: creds, integ: stun.NewShortTermIntegrity(creds.LocalPwd)}
	t.heard.Store(Now())
	s.taken.Store(t)
	s.batch.silence(s.in.at, true)
	return nil
}

// TakenOver reports whether the relay took s over from pion.
func (s *SubConn) TakenOver() bool { return s != nil && s.taken.Load() != nil }

// ChecksAnswered is how many ICE checks the relay answered for s.
func (s *SubConn) ChecksAnswered() uint64 {
	if t := s.taken.Load(); t != nil {
		return t.checks.Load()
	}
	return 0
}

// silence starts (or ends) dropping pion's writes to addr.
func (g *Batch) silence(addr netip.AddrPort, on bool) {
	g.silentMu.Lock()
	defer g.silentMu.Unlock()
	m := map[netip.AddrPort]struct{}{}
	if old := g.silent.Load(); old != nil {
		m = maps.Clone(*old)
	}
	if on {
		m[addr] = struct{}{}
	} else {
		delete(m, addr)
	}
	g.silent.Store(&m)
}

// silenced reports whether pion's writes to addr are dropped.
func (g *Batch) silenced(addr netip.AddrPort) bool {
	m := g.silent.Load()
	if m == nil || len(*m) == 0 {
		return false
	}
	_, ok := (*m)[addr]
	return ok
}

// takeOther handles a datagram from a taken-over connection's client that
// is not SRTCP: its ICE checks are answered, anything else (a late DTLS
// record) dropped. It reports whether s was taken over.
func (s *SubConn) takeOther(b []byte, from netip.AddrPort) bool {
	t := s.taken.Load()
	if t == nil {
		return false
	}
	if !stun.IsMessage(b) {
		return true
	}
	r := s.route.Load()
	if r == nil {
		return true
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if m.Decode() != nil || m.Type != stun.BindingRequest {
		return true
	}
	var u stun.Username
	if u.GetFrom(m) != nil || !strings.HasPrefix(u.String(), t.creds.LocalUfrag+":") || t.integ.Check(m) != nil {
		return true // not this connection's check: no answer, as ICE
	}
	resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())}, t.integ, stun.Fingerprint)
	if err != nil {
		return true
	}
	t.heard.Store(Now())
	t.checks.Add(1) // before the answer leaves: whoever reads it sees the count
	_, _ = r.conn.writeOwn(resp.Raw, r.addr)
	return true
}
