package server

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/ice/v4"
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
func listenTCP(addr string, log *slog.Logger) (*ice.TCPMuxDefault, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen TCP on %s: %w", addr, err)
	}
	return ice.NewTCPMuxDefault(ice.TCPMuxParams{
		Listener:             &closingListener{Listener: ln, conns: make(map[*trackedConn]struct{})},
		Logger:               quietPion{log}.NewLogger("ice-tcp"),
		ReadBufferSize:       64, // packets queued per connection for the ICE agent
		WriteBufferSize:      tcpWriteBuffer,
		FirstStunBindTimeout: tcpFirstBindTimeout,
	}), nil
}

// closingListener closes every connection it accepted when it is closed.
// pion's TCP mux waits, in Close, for each connection's first packet or
// its timeout; closing them makes Close (and the relay's shutdown)
// immediate.
type closingListener struct {
	net.Listener
	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{} // open accepted connections
}

func (l *closingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.conns[tc] = struct{}{}
	return tc, nil
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
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
