package signaling

import (
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// A session's writer is a goroutine only while it has something to write:
// a queued message, a due ping or the close frame. An audience listener
// is sent a message now and then, so most of the time it has none (issue
// 19, goroutines per listener).
//
// Whoever sets s.writing (false to true) owns the connection's writes
// until it stores false again: gorilla/websocket allows one writer at a
// time. send and closeWith start a goroutine as the writer; the ping
// timer's own goroutine writes its ping itself. A writer that has ended
// for good (close frame sent, or a write failed) never gives the
// ownership back, so no writer starts after it.

// testHookWriterIdle, when set (tests), runs when the writer has found
// nothing more to write, just before it gives up the ownership.
var testHookWriterIdle atomic.Pointer[func()]

// startWriter starts a writer goroutine unless one runs (it sees the new
// work before it stops) or the writer has ended for good.
func (s *session) startWriter() {
	if s.writing.CompareAndSwap(false, true) {
		go s.writeLoop()
	}
}

// pingDue runs on the ping timer's goroutine, every PingInterval after
// the last ping: it marks a ping due and, if no writer runs, writes it
// on this goroutine rather than starting another.
func (s *session) pingDue() {
	s.pingPending.Store(true)
	if s.writing.CompareAndSwap(false, true) {
		s.writeLoop()
	}
}

// writeLoop writes until nothing is due, then gives up the ownership of
// the writes, which its caller took.
func (s *session) writeLoop() {
	for {
		if !s.writeDue() {
			return // ended for good: the ownership stays taken
		}
		if hook := testHookWriterIdle.Load(); hook != nil {
			(*hook)()
		}
		s.writing.Store(false)
		// Work added after writeDue looked and before the store found
		// the writer running and started none: look once more.
		if !s.hasWork() || !s.writing.CompareAndSwap(false, true) {
			return
		}
	}
}

// hasWork reports whether a message is queued, a ping is due or the
// session is closing.
func (s *session) hasWork() bool {
	return s.out.len() > 0 || s.pingPending.Load() || s.closing()
}

// writeDue writes the queued messages, then the close frame if the
// session is closing, else a due ping. False when the writer has ended
// for good: after the close frame (the reader then has closeWait to see
// the client's), or after a failed write, which closes the connection
// and so ends the reader.
func (s *session) writeDue() bool {
	// Looked at before the flush: whatever was queued before closeWith
	// goes out ahead of the close frame.
	closing := s.closing()
	if !s.flush() {
		s.endWriter(true)
		return false
	}
	if closing {
		frame := websocket.FormatCloseMessage(s.closeCode, s.closeText)
		_ = s.conn.WriteControl(websocket.CloseMessage, frame, time.Now().Add(time.Second))
		_ = s.conn.SetReadDeadline(time.Now().Add(closeWait))
		s.endWriter(false)
		return false
	}
	if s.pingPending.Swap(false) {
		if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
			s.endWriter(true)
			return false
		}
		s.pinger.Reset(s.srv.cfg.PingInterval)
	}
	return true
}

// endWriter ends the writer for good: no more pings, the connection
// closed if a write failed, and run, waiting on writerDone, goes on.
func (s *session) endWriter(failed bool) {
	s.pinger.Stop()
	if failed {
		_ = s.conn.Close()
	}
	close(s.writerDone)
}

// flush writes what is queued; false if a write failed.
func (s *session) flush() bool {
	for {
		batch := s.out.take()
		if len(batch) == 0 {
			return true
		}
		for _, msg := range batch {
			if !s.write(msg) {
				return false
			}
		}
		s.out.done(batch)
	}
}

func (s *session) write(msg []byte) bool {
	_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return s.conn.WriteMessage(websocket.TextMessage, msg) == nil
}
