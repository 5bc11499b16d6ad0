package server

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// tcpWriteBuffer is how many bytes of media may wait for one ICE-TCP
// peer. pion's TCP mux queues writes per connection up to this and drops
// what does not fit, so a slow TCP peer never holds up a track's reader
// (which writes to every subscriber inline, the UDP ones batched).
// 256 KiB is seconds of audio: anything later than that is not worth
// playing.
const tcpWriteBuffer = 256 << 10

// tcpFirstBindTimeout: a TCP connection whose first STUN binding request
// has not come this soon is closed. A client sends it right after
// connecting; pion's default (30 s) lets idle connections pile up.
const tcpFirstBindTimeout = 5 * time.Second

// listenTCP opens the one TCP port for ICE-TCP (passive candidates, RFC
// 6544, framed as RFC 4571): addr is host:port like -udp's; an empty host
// listens on every interface.
func listenTCP(addr string, limit *tcpLimit, log *slog.Logger) (*ice.TCPMuxDefault, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen TCP on %s: %w", addr, err)
	}
	return ice.NewTCPMuxDefault(ice.TCPMuxParams{
		Listener:             newClosingListener(ln, limit, "ice-tcp"),
		Logger:               quietPion{log}.NewLogger("ice-tcp"),
		ReadBufferSize:       64, // packets queued per connection for the ICE agent
		WriteBufferSize:      tcpWriteBuffer,
		FirstStunBindTimeout: tcpFirstBindTimeout,
	}), nil
}

// closingListener closes every connection it accepted when it is closed.
// pion's TCP mux waits, in Close, for each connection's first packet or
// its timeout; closing them makes Close (and the relay's shutdown)
// immediate. It also holds each client address to limit's cap: a
// connection over it is closed at once and never reaches pion.
type closingListener struct {
	net.Listener
	limit   *tcpLimit // nil: no cap
	refused prometheus.Counter
	mu      sync.Mutex
	closed  bool
	conns   map[*trackedConn]struct{} // open accepted connections
}

// newClosingListener wraps ln; name is its label in
// relay_tcp_refused_total.
func newClosingListener(ln net.Listener, limit *tcpLimit, name string) *closingListener {
	l := &closingListener{Listener: ln, limit: limit, conns: make(map[*trackedConn]struct{})}
	if limit != nil {
		l.refused = limit.refused.WithLabelValues(name)
	}
	return l
}

func (l *closingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := addrKey(c.RemoteAddr())
		if !l.limit.take(key) {
			l.refused.Inc() // before the close, which the client sees
			_ = c.Close()
			continue // the caller's accept loop must not see an error
		}
		tc := &trackedConn{Conn: c, l: l, key: key}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			l.limit.give(key)
			_ = c.Close()
			return nil, net.ErrClosed
		}
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		return tc, nil
	}
}

func (l *closingListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
	return err
}

// trackedConn leaves its listener's set when closed.
type trackedConn struct {
	net.Conn
	l    *closingListener
	key  netip.Addr // the address it counts against in l.limit
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.l.limit.give(c.key)
	})
	return c.Conn.Close()
}
