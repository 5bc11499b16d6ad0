package media

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/stun/v4"
)

// Takeover (issue 19; the room layer's side is sfu/takeover.go): once a
// sub connection is direct and its subscriber's RTCP is read by the
// socket readers, nothing on its media path is pion's but the ICE checks.
// Taking it over, the relay answers the client's ICE checks itself
// (consent freshness, RFC 7675), nominates a new pair itself when the
// client moves or restarts ICE, sends the sender reports over its own
// SRTCP, and drops what pion writes to the client, so that pion's
// connection can be closed without the client noticing: its goroutines,
// SRTP sessions and buffers go, the client keeps its DTLS session (its
// keys are the relay's already) and its ICE pair.

// ICECreds are a connection's ICE credentials as its descriptions give
// them: the relay's (local) and the client's (remote).
type ICECreds struct {
	LocalUfrag, LocalPwd, RemoteUfrag, RemotePwd string
}

// taken is a taken-over connection's ICE state, read by its flow's
// socket reader.
type taken struct {
	creds  ICECreds
	integ  stun.MessageIntegrity
	checks atomic.Uint64         // checks answered
	heard  atomic.Int64          // Now() of the last check answered or SRTCP served from the client
	prev   atomic.Pointer[taken] // the credentials before an ICE restart, until the new ones are used

	remoteInt  stun.MessageIntegrity // the client's password: for the relay's own checks
	tiebreaker uint64
}

// nomination is the relay's nomination of a new pair of a taken-over
// connection (the relay is the controlling agent, as the offerer): after
// an ICE restart, or a client that moved. It outlives credential changes:
// each check is made with the credentials current when it is sent. The
// readers of both flows and a timer touch it.
type nomination struct {
	mu      sync.Mutex
	nominee netip.AddrPort                 // the client's address being nominated; zero: none
	tx      [][stun.TransactionIDSize]byte // the checks sent for it (any answer will do)
	tries   int
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
	t := newTaken(creds, nil)
	t.heard.Store(Now())
	s.taken.Store(t)
	s.batch.silence(s.in.at, true)
	s.batch.direct.addUfrag(creds.LocalUfrag, s)
	// Nothing of pion's connection may stay referenced, or its buffers
	// and state outlive it: its senders (kept for its RTCP readers), the
	// down tracks' pion writers, the connection as the reports' writer.
	s.in.mu.Lock()
	s.in.readers = nil
	tracks := slices.Clone(s.in.tracks)
	s.in.mu.Unlock()
	for _, d := range tracks {
		if b := d.bound.Load(); b != nil {
			d.BindTaken(b.ssrc, b.pt)
		}
	}
	s.mu.Lock()
	s.rtcp = nil
	s.mu.Unlock()
	return nil
}

func newTaken(creds ICECreds, prev *taken) *taken {
	t := &taken{creds: creds, integ: stun.NewShortTermIntegrity(creds.LocalPwd),
		remoteInt: stun.NewShortTermIntegrity(creds.RemotePwd)}
	t.prev.Store(prev)
	var b [8]byte
	_, _ = rand.Read(b[:])
	t.tiebreaker = binary.BigEndian.Uint64(b[:])
	return t
}

// SetRemoteICE gives a taken-over connection the client's credentials
// from its latest answer (an ICE restart changes them).
func (s *SubConn) SetRemoteICE(ufrag, pwd string) {
	t := s.taken.Load()
	if t == nil || (t.creds.RemoteUfrag == ufrag && t.creds.RemotePwd == pwd) {
		return
	}
	creds := t.creds
	creds.RemoteUfrag, creds.RemotePwd = ufrag, pwd
	n := newTaken(creds, t.prev.Load())
	n.heard.Store(t.heard.Load())
	n.checks.Store(t.checks.Load())
	s.taken.Store(n)
	// A nomination under way goes on with the new credentials: its next
	// check is made with them.
}

// TakenOver reports whether the relay took s over from pion.
func (s *SubConn) TakenOver() bool { return s != nil && s.taken.Load() != nil }

// checksAnswered is how many ICE checks the relay answered for s.
func (s *SubConn) checksAnswered() uint64 {
	if t := s.taken.Load(); t != nil {
		return t.checks.Load()
	}
	return 0
}

// silence starts (or ends) dropping pion's writes to addr.
func (g *Batch) silence(addr netip.AddrPort, on bool) {
	g.silentMu.Lock()
	defer g.silentMu.Unlock()
	updateCOW(&g.silent, func(m map[netip.AddrPort]struct{}) {
		if on {
			m[addr] = struct{}{}
		} else {
			delete(m, addr)
		}
	})
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
	if m.Decode() != nil {
		return true
	}
	if m.Type == stun.BindingSuccess {
		s.nominated(t, m, from)
		return true
	}
	if m.Type != stun.BindingRequest {
		return true
	}
	var u stun.Username
	if u.GetFrom(m) != nil {
		return true
	}
	creds, prev := t, t.prev.Load()
	switch {
	case strings.HasPrefix(u.String(), t.creds.LocalUfrag+":") && t.integ.Check(m) == nil:
		t.prev.Store(nil) // the restart's credentials are in use
	case prev != nil && strings.HasPrefix(u.String(), prev.creds.LocalUfrag+":") && prev.integ.Check(m) == nil:
		creds = prev
	default:
		return true // not this connection's check: no answer, as ICE
	}
	resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())}, creds.integ, stun.Fingerprint)
	if err != nil {
		return true
	}
	t.heard.Store(Now())
	t.checks.Add(1) // before the answer leaves: whoever reads it sees the count
	_, _ = r.conn.writeOwn(resp.Raw, from)
	if from != r.addr && creds == t {
		s.nominate(r.conn, from) // a new pair with the current credentials
	}
	return true
}

// nominate starts nominating the client's pair at from (USE-CANDIDATE,
// as the controlling agent): a check every nominationEvery until the
// client answers one, the connection moves on, or nominationTries.
func (s *SubConn) nominate(conn *batchConn, from netip.AddrPort) {
	n := &s.nom
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nominee == from {
		return // under way
	}
	if n.nominee.IsValid() {
		s.batch.direct.dropSub(n.nominee, s)
	}
	if s.batch.direct.addSub(from, s) != nil {
		return // another connection's address
	}
	n.nominee, n.tx, n.tries = from, nil, 0
	s.sendNominationLocked(conn)
}

// How the relay's nominating checks are repeated: RFC 8445's Ta is 50 ms;
// a client that has stopped checking waits for them.
const (
	nominationEvery = 100 * time.Millisecond
	nominationTries = 50
)

// sendNominationLocked sends one nominating check, with the credentials
// current now, and schedules the next. s.nom.mu is held.
func (s *SubConn) sendNominationLocked(conn *batchConn) {
	n := &s.nom
	if t := s.taken.Load(); t != nil && t.creds.RemotePwd != "" {
		m, err := stun.Build(stun.TransactionID, stun.BindingRequest,
			stun.NewUsername(t.creds.RemoteUfrag+":"+t.creds.LocalUfrag), ice.AttrControlling(t.tiebreaker),
			ice.UseCandidate(), ice.PriorityAttr(nominationPriority), t.remoteInt, stun.Fingerprint)
		if err == nil {
			n.tx = append(n.tx, m.TransactionID)
			_, _ = conn.writeOwn(m.Raw, n.nominee)
		}
	}
	n.tries++
	nominee := n.nominee
	time.AfterFunc(nominationEvery, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.nominee != nominee || s.taken.Load() == nil {
			return // answered, moved on, or stopped
		}
		if n.tries >= nominationTries {
			// Given up: the client's next check from there starts over.
			s.batch.direct.dropSub(n.nominee, s)
			n.nominee, n.tx = netip.AddrPort{}, nil
			return
		}
		s.sendNominationLocked(conn)
	})
}

// nominationPriority is the PRIORITY of the relay's nominating checks: a
// host candidate's (RFC 8445 §5.1.2.1, type preference 126).
const nominationPriority = 126<<24 | 65535<<8 | 255

// nominated takes the client's answer to a nominating check: the route
// moves to the nominated address.
func (s *SubConn) nominated(t *taken, m *stun.Message, from netip.AddrPort) {
	n := &s.nom
	n.mu.Lock()
	ok := from == n.nominee && slices.Contains(n.tx, m.TransactionID) && t.remoteInt.Check(m) == nil
	if ok {
		n.nominee, n.tx = netip.AddrPort{}, nil
	}
	n.mu.Unlock()
	if ok {
		t.heard.Store(Now())
		s.moveTo(from)
	}
}

// takenWriter is a taken-over connection's down tracks' pion writer:
// there is no pion connection, so a packet the direct path did not take
// is dropped.
type takenWriter struct{}

var errTakenOver = errors.New("media: the connection was taken over from pion: only the direct path sends")

func (takenWriter) WriteRTP(*rtp.Header, []byte) (int, error) { return 0, errTakenOver }
func (takenWriter) Write([]byte) (int, error)                 { return 0, errTakenOver }

// RestartICE gives a taken-over connection new local credentials (an ICE
// restart the relay offered): checks with the old ones are still
// answered until one with the new ones arrives.
func (s *SubConn) RestartICE(creds ICECreds) {
	old := s.taken.Load()
	if old == nil {
		return
	}
	old.prev.Store(nil) // one restart back is enough
	t := newTaken(creds, old)
	t.heard.Store(old.heard.Load())
	t.checks.Store(old.checks.Load())
	s.taken.Store(t)
	s.batch.direct.addUfrag(creds.LocalUfrag, s)
}

// moveTo makes from the client's address (a check nominating it: a new
// network path, or an ICE restart's pair) instead of the route's.
func (s *SubConn) moveTo(from netip.AddrPort) {
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	old := s.route.Load()
	if old == nil || old.addr == from || s.stopped {
		return
	}
	s.pair = &directRoute{conn: old.conn, addr: from}
	s.route.Store(s.pair)
	if s.in.at.IsValid() {
		s.batch.direct.dropSub(s.in.at, s)
		s.batch.silence(s.in.at, false)
		s.in.at = netip.AddrPort{}
	}
	if s.batch.direct.addSub(from, s) == nil {
		s.in.at = from
		s.batch.silence(from, true)
	}
}

// addUfrag makes the readers find s by its local ICE username fragment:
// a check from an address not registered (an ICE restart's new sockets).
func (d *Direct) addUfrag(ufrag string, s *SubConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	updateCOW(&d.ufrags, func(m map[string]*SubConn) { m[ufrag] = s })
}

// dropUfrags forgets every username fragment of s.
func (d *Direct) dropUfrags(s *SubConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	updateCOW(&d.ufrags, func(m map[string]*SubConn) {
		maps.DeleteFunc(m, func(_ string, o *SubConn) bool { return o == s })
	})
}

// byUfrag is the taken-over connection b, a STUN check from an address
// not registered, is for, or nil: read in place, as the UDP mux does
// (stunufrag.go), since every STUN datagram of a pion connection passes
// here too; the connection then checks the message whole.
func (d *Direct) byUfrag(b []byte) *SubConn {
	m := *d.ufrags.Load()
	if len(m) == 0 {
		return nil
	}
	local, ok := stunLocalUfrag(b)
	if !ok {
		return nil
	}
	return m[string(local)]
}
