//go:build linux

package signaling

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/protocol"
	"golang.org/x/sys/unix"
)

// The parker watches parked sockets with an epoll instance of its own,
// beside the Go runtime's netpoller, which keeps owning them (they stay
// non-blocking and are never duplicated). What that takes:
//   - Each registration is keyed by a token that is never reused, not by
//     the descriptor: a closed descriptor's number comes back for the next
//     connection, and an event read for the old one must not wake the new.
//   - A registration is removed (EPOLL_CTL_DEL) by whoever takes the
//     connection out of the parker, while it still owns the socket, so
//     before anything can close it; RawConn.Control holds the descriptor
//     open meanwhile.
//   - One-shot (EPOLLONESHOT) and level-triggered: bytes that arrived
//     before the registration are reported at once (EPOLL_CTL_ADD polls
//     the socket), the event fires once, and the parker reads nothing, so
//     the session's first read finds every byte (Go reads before it waits
//     for its own edge-triggered event).
//   - No bytes may wait in user space where epoll cannot see them: gorilla
//     reads through a fresh bufio.Reader of its own (ReadBufferSize is
//     set) and refuses an upgrade whose request came with bytes after it;
//     TLS connections (not syscall.Conn) are not parked.
//   - The poller sleeps in epoll_wait, a blocking system call: it holds
//     one OS thread (not a P; the runtime gives the P to another thread).
//
// Why not a goroutine per connection blocked in RawConn.Read (the runtime's
// own poller, no second epoll): it still costs a goroutine and its stack,
// the very thing parking removes.

// kickToken is the eventfd's token; connection tokens start at 1.
const kickToken = 0

// parkWriteTimeout bounds the close frame the parker writes. The socket's
// send buffer holds nothing but the 101 response, so the write does not
// block; the bound only keeps a broken socket from stalling the poller.
const parkWriteTimeout = 100 * time.Millisecond

// testHookPark, when set (tests), runs before a connection is registered.
var testHookPark atomic.Pointer[func()]

// parkedConn is an upgraded WebSocket whose client has sent nothing yet.
// It belongs to the parker while it is in the parker's map; whoever takes
// it out owns it.
type parkedConn struct {
	conn   *websocket.Conn
	remote string
	addr   netip.Addr
	token  uint64 // its epoll registration's key
	// Waiting: the join deadline. Lingering: when the parker stops
	// waiting for the client's answer to its close frame.
	deadline   time.Time
	lingering  bool        // the close frame for the join timeout is sent
	hungUp     bool        // its event said the client shut down or reset the connection
	prev, next *parkedConn // in the parker's waiting or lingering list
}

// raw is the socket under conn.
func (pc *parkedConn) raw() (syscall.RawConn, error) {
	sc, ok := pc.conn.NetConn().(syscall.Conn)
	if !ok {
		return nil, errors.New("not a socket")
	}
	return sc.SyscallConn()
}

// connList is a list of parked connections in deadline order: every
// connection in one list gets the same timeout when it enters it, so
// appending keeps the order and the head expires first.
type connList struct{ head, tail *parkedConn }

func (l *connList) push(pc *parkedConn) {
	pc.prev, pc.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = pc
	} else {
		l.head = pc
	}
	l.tail = pc
}

func (l *connList) remove(pc *parkedConn) {
	if pc.prev != nil {
		pc.prev.next = pc.next
	} else {
		l.head = pc.next
	}
	if pc.next != nil {
		pc.next.prev = pc.prev
	} else {
		l.tail = pc.prev
	}
	pc.prev, pc.next = nil, nil
}

// parker holds parked connections and runs the one poller goroutine,
// started with the first park and ended by close.
type parker struct {
	parkerParams

	mu        sync.Mutex
	epfd      int                    // guarded by mu until the poller starts; then fixed until close
	kick      int                    // an eventfd that wakes the poller to end; likewise
	conns     map[uint64]*parkedConn // guarded by mu; every parked connection by token
	waiting   connList               // guarded by mu; by join deadline
	lingering connList               // guarded by mu; close frame sent, by end of the wait for the answer
	lastToken uint64                 // guarded by mu
	startErr  error                  // guarded by mu; why the poller could not start (then nothing parks)
	refuse    bool                   // guarded by mu; Drain or Shutdown began: park refuses
	quit      bool                   // guarded by mu; close began: the poller ends
	done      chan struct{}          // closed when the poller ends; nil until it starts

	failures *throttledLog // a failed park, logged at most once a minute

	scratch []byte // owned by the poller (then by close, after it ended): what a lingering client sends is read into it and dropped
}

func newParker(p parkerParams) *parker {
	return &parker{parkerParams: p, epfd: -1, kick: -1, conns: make(map[uint64]*parkedConn),
		failures: newThrottledLog(p.log, time.Minute)}
}

// park takes conn until its client sends something, its join deadline,
// Drain or Shutdown; false if it cannot (the caller starts the session).
func (p *parker) park(conn *websocket.Conn, remote string, addr netip.Addr) bool {
	pc := &parkedConn{conn: conn, remote: remote, addr: addr}
	raw, err := pc.raw()
	if err != nil {
		return false // TLS: bytes may wait decrypted in user space
	}
	if hook := testHookPark.Load(); hook != nil {
		(*hook)()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refuse || !p.startLocked() {
		return false
	}
	p.lastToken++
	pc.token = p.lastToken
	// Under the lock, so that Drain or Shutdown, which take parked
	// connections out under it, never see one that is not registered
	// yet. The deadline is taken under it too, which keeps the list in
	// deadline order.
	pc.deadline = time.Now().Add(p.joinTimeout)
	if err := p.ctl(raw, unix.EPOLL_CTL_ADD, pc.token); err != nil {
		// e.g. fs.epoll.max_user_watches reached: raise it (sysctl).
		p.failures.log("park", "cannot park an idle connection; it gets a session and goroutine at once", "err", err)
		return false
	}
	p.conns[pc.token] = pc
	p.waiting.push(pc)
	return true
}

// startLocked starts the poller if it has not started; false if it
// cannot (the reason is logged once).
func (p *parker) startLocked() bool {
	if p.done != nil {
		return true
	}
	if p.startErr != nil {
		return false
	}
	if p.startErr = p.openLocked(); p.startErr != nil {
		p.log.Warn("cannot park idle connections; each gets a goroutine at once", "err", p.startErr)
		return false
	}
	p.scratch = make([]byte, 4096)
	p.done = make(chan struct{})
	go p.loop()
	return true
}

func (p *parker) openLocked() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	kick, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, kick, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		_ = unix.Close(kick)
		_ = unix.Close(epfd)
		return err
	}
	p.epfd, p.kick = epfd, kick
	return nil
}

// ctl adds or deletes the registration of raw's descriptor.
func (p *parker) ctl(raw syscall.RawConn, op int, token uint64) error {
	var cerr error
	err := raw.Control(func(fd uintptr) {
		ev := unix.EpollEvent{
			Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
			Fd:     int32(uint32(token)),
			Pad:    int32(uint32(token >> 32)),
		}
		cerr = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err != nil {
		return err
	}
	return cerr
}

// unregister removes pc's registration; its owner calls it before
// anything else, while the socket is surely open.
func (p *parker) unregister(pc *parkedConn) {
	raw, err := pc.raw()
	if err == nil {
		err = p.ctl(raw, unix.EPOLL_CTL_DEL, pc.token)
	}
	if err != nil {
		// Not expected: the socket is open and registered. Closing it
		// removes the registration anyway.
		p.log.Debug("unregister a parked connection", "err", err)
	}
}

func (p *parker) removeLocked(pc *parkedConn) {
	delete(p.conns, pc.token)
	if pc.lingering {
		p.lingering.remove(pc)
	} else {
		p.waiting.remove(pc)
	}
}

// maxWait bounds one epoll_wait (its timeout is an int of milliseconds).
const maxWait = time.Minute

// waitLocked is how long the poller may sleep: until the earliest
// deadline, and never longer than the join timeout, since a connection
// parked meanwhile has its deadline that far after it was parked.
func (p *parker) waitLocked(now time.Time) int {
	next := now.Add(min(p.joinTimeout, maxWait))
	for _, h := range []*parkedConn{p.waiting.head, p.lingering.head} {
		if h != nil && h.deadline.Before(next) {
			next = h.deadline
		}
	}
	d := next.Sub(now)
	if d <= 0 {
		return 0
	}
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// loop is the poller: it hands connections that became readable to their
// sessions and closes those past their deadline, until close.
func (p *parker) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	var woken, expired, ended []*parkedConn
	p.mu.Lock()
	wait := p.waitLocked(time.Now())
	p.mu.Unlock()
	for {
		n, err := unix.EpollWait(p.epfd, events, wait)
		if err != nil && !errors.Is(err, unix.EINTR) {
			p.fail(err)
			return
		}
		now := time.Now()
		p.mu.Lock()
		if p.quit {
			p.mu.Unlock()
			return
		}
		for _, ev := range events[:max(n, 0)] {
			token := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			pc := p.conns[token]
			if pc == nil {
				continue // the kick, or taken out by Drain since
			}
			p.removeLocked(pc)
			if pc.lingering {
				ended = append(ended, pc)
			} else {
				pc.hungUp = ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0
				woken = append(woken, pc)
			}
		}
		for pc := p.waiting.head; pc != nil && !pc.deadline.After(now); pc = p.waiting.head {
			p.removeLocked(pc)
			expired = append(expired, pc)
		}
		for pc := p.lingering.head; pc != nil && !pc.deadline.After(now); pc = p.lingering.head {
			p.removeLocked(pc)
			ended = append(ended, pc)
		}
		p.mu.Unlock()

		p.wake(woken)
		for _, pc := range expired {
			p.unregister(pc)
			p.expire(pc)
		}
		p.end(ended)
		clear(woken)
		clear(expired)
		clear(ended)
		woken, expired, ended = woken[:0], expired[:0], ended[:0]

		p.mu.Lock()
		wait = p.waitLocked(time.Now())
		p.mu.Unlock()
	}
}

// expire closes a connection that reached its join deadline parked: the
// close frame a session would send goes now, and the connection lingers
// (parked, no goroutine) until the client answers or closeWait passes,
// as a session's does.
func (p *parker) expire(pc *parkedConn) {
	frame := websocket.FormatCloseMessage(protocol.ClosePolicy, joinTimeoutText(p.joinTimeout))
	if err := pc.conn.WriteControl(websocket.CloseMessage, frame, time.Now().Add(parkWriteTimeout)); err != nil {
		p.finish(pc, false)
		return
	}
	raw, err := pc.raw()
	if err != nil {
		p.finish(pc, false)
		return
	}
	p.mu.Lock()
	if p.quit {
		p.mu.Unlock()
		p.finish(pc, true)
		return
	}
	p.lastToken++
	pc.token = p.lastToken
	pc.lingering = true
	pc.deadline = time.Now().Add(closeWait)
	if err := p.ctl(raw, unix.EPOLL_CTL_ADD, pc.token); err != nil {
		p.mu.Unlock()
		p.finish(pc, true)
		return
	}
	p.conns[pc.token] = pc
	p.lingering.push(pc)
	p.mu.Unlock()
}

// finish closes a connection that never got a session, after reading and
// dropping what its client sent if drain is set (its answer to the close
// frame: closing a socket with unread bytes resets it).
func (p *parker) finish(pc *parkedConn, drain bool) {
	if raw, err := pc.raw(); drain && err == nil {
		_ = raw.Read(func(fd uintptr) bool {
			for range 16 { // a client that keeps sending gets a reset
				if n, err := unix.Read(int(fd), p.scratch); n <= 0 || err != nil {
					break
				}
			}
			return true // never wait
		})
	}
	_ = pc.conn.Close()
	p.onClosed(pc.addr)
}

// fail ends parking after epoll_wait failed (not expected): the waiting
// connections get their sessions, the lingering ones are closed.
func (p *parker) fail(err error) {
	p.log.Error("waiting for idle connections failed; they get sessions, and new ones get one at once", "err", err)
	p.mu.Lock()
	p.refuse = true
	waiting, lingering := p.takeLocked(&p.waiting), p.takeLocked(&p.lingering)
	p.mu.Unlock()
	p.wake(waiting)
	p.end(lingering)
}

// wake gives each of pcs, taken out of the parker, its session; except
// those whose client hung up without sending a byte, which the parker
// closes as their session would (a close frame, then the socket), without
// starting one: a flood that drops its idle connections all at once would
// otherwise start two goroutines for each.
func (p *parker) wake(pcs []*parkedConn) {
	for _, pc := range pcs {
		p.unregister(pc)
		if pc.hungUp && p.nothingSent(pc) {
			_ = pc.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(protocol.CloseNormal, ""), time.Now().Add(parkWriteTimeout))
			p.finish(pc, false)
			continue
		}
		p.onWake(pc.conn, pc.remote, pc.addr, pc.deadline)
	}
}

// nothingSent reports whether pc's socket has nothing to read but its end
// (or an error): what its session would read first.
func (p *parker) nothingSent(pc *parkedConn) bool {
	raw, err := pc.raw()
	if err != nil {
		return false // the session finds out
	}
	var n int
	var rerr error
	if err := raw.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), p.scratch[:1], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return true // never wait
	}); err != nil {
		return false
	}
	if rerr != nil { // a reset: what the session would read
		return !errors.Is(rerr, unix.EAGAIN) && !errors.Is(rerr, unix.EINTR)
	}
	return n == 0 // the end, with nothing before it
}

// end closes each of pcs, taken out of the parker while lingering.
func (p *parker) end(pcs []*parkedConn) {
	for _, pc := range pcs {
		p.unregister(pc)
		p.finish(pc, true)
	}
}

// takeLocked empties l and returns what it held.
func (p *parker) takeLocked(l *connList) []*parkedConn {
	var all []*parkedConn
	for pc := l.head; pc != nil; pc = l.head {
		p.removeLocked(pc)
		all = append(all, pc)
	}
	return all
}

// wakeAll gives every waiting connection its session and parks no more
// (Drain: the sessions tell their clients).
func (p *parker) wakeAll() {
	p.mu.Lock()
	p.refuse = true
	waiting := p.takeLocked(&p.waiting)
	p.mu.Unlock()
	p.wake(waiting)
}

// close ends parking (Shutdown): the poller ends, every waiting
// connection is sent a close frame with code and text and closed, and
// every lingering one is closed. It waits for nothing else.
func (p *parker) close(code int, text string) {
	p.mu.Lock()
	again := p.quit
	p.refuse, p.quit = true, true
	waiting, lingering := p.takeLocked(&p.waiting), p.takeLocked(&p.lingering)
	done := p.done
	p.mu.Unlock()
	if done == nil || again {
		return // never parked anything, or closed already
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	if _, err := unix.Write(p.kick, one[:]); err != nil {
		p.log.Error("cannot wake the parked-connection poller to end it", "err", err)
	}
	<-done // the poller takes nothing out any more, and p.scratch is free
	frame := websocket.FormatCloseMessage(code, text)
	for _, pc := range waiting {
		p.unregister(pc)
		_ = pc.conn.WriteControl(websocket.CloseMessage, frame, time.Now().Add(parkWriteTimeout))
		p.finish(pc, false)
	}
	p.end(lingering)
	_ = unix.Close(p.epfd)
	_ = unix.Close(p.kick)
}
