package signaling_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"go.uber.org/goleak"
)

// FuzzSession drives a live relay over its WebSocket, the way any client
// could. Each input is a sequence of messages, one per line, sent as text
// frames on a fresh connection. In a message, $self becomes the session's
// own participant id (once joined arrived) and $peer the id of a
// companion audience member joined to room "fuzz" for that input.
//
// After each input: the relay answered a final ping (or closed the
// connection); it never closed with 1011 nor sent error "internal" (both
// mean a handler panicked or failed unexpectedly); everything it sent was
// a JSON object with a type; and a fresh client can still join a room and
// get joined. The whole relay is shut down at the end with a goroutine
// leak check, and before that a real client joins once more.
//
// Only the public protocol is used, so the target keeps working when
// signaling's internals change. Network safety: see sfu/fuzz_test.go (the
// relay's UDP socket is bound to 127.0.0.1).
//
// A live relay's coverage varies from run to run (goroutines, timers), so
// the fuzzer keeps finding "new" inputs and would spend most of its time
// minimizing them: fuzz with -fuzzminimizetime 1x (docs/reliability.md).
func FuzzSession(f *testing.F) {
	for _, seq := range sessionSeeds() {
		f.Add([]byte(strings.Join(seq, "\n")))
	}
	f.Cleanup(func() { goleak.VerifyNone(f) }) // registered first: runs last
	r := &relay{relaytest.Start(f, relayOpts{Grace: 200 * time.Millisecond, MicTimeout: 500 * time.Millisecond})}
	f.Cleanup(func() { finalJoin(f, r) }) // runs before the relay's shutdown
	var inputs int
	f.Fuzz(func(t *testing.T, data []byte) {
		inputs++
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		runSequence(ctx, t, r, data)
		healthJoin(ctx, t, r, fmt.Sprintf("health%d", inputs))
	})
}

// Limits per input: the messages past fuzzMaxMessages are dropped, so that
// an input runs in milliseconds; fuzzAnswerWait bounds the wait for the
// final pong, which a live session sends at once.
const (
	fuzzMaxMessages = 16
	fuzzAnswerWait  = 10 * time.Second
)

// sessionSeeds are realistic sequences; testdata/fuzz/FuzzSession holds a
// few more.
func sessionSeeds() [][]string {
	offer := func(id, sdp string) string {
		b, _ := json.Marshal(protocol.SessionDescription{Header: protocol.Header{Type: protocol.TypeOffer, ID: id}, PC: protocol.PCPub, SDP: sdp})
		return string(b)
	}
	answer := func(sdp string) string {
		b, _ := json.Marshal(protocol.SessionDescription{Header: protocol.Header{Type: protocol.TypeAnswer}, PC: protocol.PCSub, SDP: sdp})
		return string(b)
	}
	join := func(role string) string {
		return `{"type":"join","id":"j","room":"fuzz","name":"Fuzz","role":"` + role + `","version":1}`
	}
	return [][]string{
		{join("host"), `{"type":"ping","id":"p"}`, `{"type":"leave"}`},
		{`{"type":"ping"}`, join("audience"), `{"type":"mic_request","id":"m"}`, `{"type":"mic_reject"}`},
		{join("host"), offer("o", fuzzOffer), fuzzCandidate, answer(fuzzSubAnswer)},
		{join("guest"), offer("o", "v=0"), offer("o2", "garbage"), answer("v=0\r\n")},
		{join("audience"), join("host"), `{"type":"join","room":"other","name":"x"}`},
		{join("audience"), `{"type":"mute","participant":"$self","muted":true}`, `{"type":"offer","pc":"pub","sdp":"v=0"}`},
		{join("host"), `{"type":"mic_invite","participant":"$peer"}`, `{"type":"mute","participant":"$peer","muted":true}`, `{"type":"kick","participant":"$peer","reason":"fuzz"}`},
		{join("host"), `{"type":"mic_accept","participant":"$peer"}`, `{"type":"mic_release","participant":"$peer"}`, `{"type":"kick","participant":"$self"}`},
		{join("guest"), `{"type":"mic_release"}`, offer("o", fuzzOffer)},
		{join("host"), `{"type":"pk_invite","room":"fuzz"}`, `{"type":"pk_invite","room":"elsewhere"}`, `{"type":"pk_accept","room":"elsewhere"}`, `{"type":"pk_end","room":"elsewhere"}`, `{"type":"mute","participant":"$peer","muted":true}`},
		{join("audience"), `{"type":"pk_invite","room":"fuzz2"}`, `{"type":"pk_reject","room":"x y"}`},
		{`hello`},
		{`{"type":"offer","pc":"pub","sdp":"v=0"}`},
		{join("audience"), `{"type":"candidate","pc":"sub","candidate":null}`, `{"type":"candidate","pc":"pub","candidate":{"candidate":"candidate:x","sdpMid":"0"}}`, `[1]`, `{"type":"dance"}`},
		{join("host"), `{"type":"mute","participant":"$self","muted":true}`, `{"type":"mute","participant":"$self","muted":false}`, `{"type":"leave"}`, `{"type":"ping"}`},
	}
}

// fuzzOffer is a Chromium pub offer (one send-only Opus track, a loopback
// candidate); fuzzSubAnswer answers the relay's first sub offer.
var fuzzOffer = strings.Join([]string{
	"v=0", "o=- 6480463405012581435 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0", "a=msid-semantic: WMS stream",
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 0", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
	"a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host generation 0",
	"a=ice-ufrag:WnJk", "a=ice-pwd:cMnEfN0J9mP1wE3pcxbmXqGh", "a=ice-options:trickle",
	"a=fingerprint:sha-256 46:7C:39:C0:6B:D1:1A:3E:4C:2B:7E:13:95:07:54:2B:F5:31:A0:7B:1D:0C:E5:1B:3E:52:74:F1:9B:5E:2A:08",
	"a=setup:actpass", "a=mid:0", "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level", "a=sendonly", "a=msid:stream mic", "a=rtcp-mux",
	"a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1", "a=rtpmap:0 PCMU/8000", "a=ssrc:3735928559 cname:fuzz", "",
}, "\r\n")

var fuzzSubAnswer = strings.Join([]string{
	"v=0", "o=- 1409432829624786323 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0", "a=msid-semantic: WMS",
	"m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0",
	"a=candidate:2 1 udp 2130706431 127.0.0.1 50001 typ host generation 0",
	"a=ice-ufrag:Qy7d", "a=ice-pwd:T2vXb4TqjJwJxWZ0mVh4Zk1r",
	"a=fingerprint:sha-256 0A:43:15:A3:29:E7:5C:77:1A:6A:6E:22:81:9C:4E:42:6F:50:24:9C:D8:0D:11:7B:51:72:A4:E9:73:E8:42:A1",
	"a=setup:active", "a=mid:0", "a=sctp-port:5000", "",
}, "\r\n")

const fuzzCandidate = `{"type":"candidate","pc":"pub","candidate":{"candidate":"candidate:3 1 udp 2130706431 127.0.0.1 50002 typ host","sdpMid":"0","sdpMLineIndex":0}}`

// endPing is sent after the input's messages; its pong means the relay
// handled everything before it.
const endPing = `{"type":"ping","id":"fuzz-end"}`

// sessionLog is what the reader saw on one connection.
type sessionLog struct {
	mu       sync.Mutex
	problems []string
	self     string
	closed   bool
	pong     bool

	joined chan struct{} // closed when self is known or the connection ended
	done   chan struct{} // closed when the pong arrived or the connection ended
}

func (l *sessionLog) problem(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

// readSession reads conn until it ends, checking each frame.
func readSession(conn *websocket.Conn, l *sessionLog) {
	var joinedOnce, doneOnce sync.Once
	defer joinedOnce.Do(func() { close(l.joined) })
	defer doneOnce.Do(func() { close(l.done) })
	for {
		typ, data, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == protocol.CloseInternalError {
				l.problem("relay closed with %d %q: a handler panicked", ce.Code, ce.Text)
			}
			l.mu.Lock()
			l.closed = true
			l.mu.Unlock()
			return
		}
		if typ != websocket.TextMessage {
			l.problem("relay sent a frame of type %d", typ)
			continue
		}
		var m struct {
			Type        string          `json:"type"`
			ID          string          `json:"id"`
			Code        string          `json:"code"`
			Message     string          `json:"message"`
			Participant json.RawMessage `json:"participant"` // an object in joined, an id elsewhere
		}
		if err := json.Unmarshal(data, &m); err != nil || m.Type == "" {
			l.problem("relay sent %q: not a JSON object with a type (%v)", data, err)
			continue
		}
		switch m.Type {
		case protocol.TypeJoined:
			var p protocol.Participant
			if err := json.Unmarshal(m.Participant, &p); err != nil || p.ID == "" {
				l.problem("joined without a participant id: %s", data)
			}
			l.mu.Lock()
			l.self = p.ID
			l.mu.Unlock()
			joinedOnce.Do(func() { close(l.joined) })
		case protocol.TypeError:
			// ErrClosed is mapped to internal on purpose: a message racing
			// the participant's own removal (kicked, timed out).
			if m.Code == protocol.CodeInternal && !strings.Contains(m.Message, "already been removed") {
				l.problem("relay sent error internal: %s", data)
			}
			if m.Code == "" || m.Message == "" {
				l.problem("error without code or message: %s", data)
			}
		case protocol.TypePong:
			if m.ID == "fuzz-end" {
				l.mu.Lock()
				l.pong = true
				l.mu.Unlock()
				doneOnce.Do(func() { close(l.done) })
			}
		}
	}
}

// runSequence sends data's messages on a new connection and checks what
// comes back.
func runSequence(ctx context.Context, t *testing.T, r *relay, data []byte) {
	msgs := bytes.Split(data, []byte("\n"))
	if len(msgs) > fuzzMaxMessages {
		msgs = msgs[:fuzzMaxMessages]
	}
	peer := ""
	if bytes.Contains(data, []byte("$peer")) {
		peer = companion(ctx, t, r)
	}

	conn, _, err := websocket.DefaultDialer.DialContext(ctx, r.URL, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	l := &sessionLog{joined: make(chan struct{}), done: make(chan struct{})}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		readSession(conn, l)
	}()
	defer func() {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = conn.Close()
		<-readerDone
		l.mu.Lock()
		defer l.mu.Unlock()
		if len(l.problems) > 0 {
			t.Fatalf("after %q:\n%s", data, strings.Join(l.problems, "\n"))
		}
	}()

	sentJoin := false
	for _, m := range msgs {
		if bytes.Contains(m, []byte("$self")) && sentJoin {
			select { // the id, once the relay answered the join
			case <-l.joined:
			case <-time.After(2 * time.Second):
			}
		}
		l.mu.Lock()
		self := l.self
		l.mu.Unlock()
		m = bytes.ReplaceAll(m, []byte("$self"), []byte(orNone(self)))
		m = bytes.ReplaceAll(m, []byte("$peer"), []byte(orNone(peer)))
		sentJoin = sentJoin || bytes.Contains(m, []byte("join"))
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := conn.WriteMessage(websocket.TextMessage, m); err != nil {
			return // the relay closed the connection: fine, and checked above
		}
	}
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := conn.WriteMessage(websocket.TextMessage, []byte(endPing)); err != nil {
		return
	}
	select {
	case <-l.done:
	case <-time.After(fuzzAnswerWait):
		l.problem("no pong for the final ping within %v and the connection is still open", fuzzAnswerWait)
	}
}

func orNone(id string) string {
	if id == "" {
		return "p_none"
	}
	return id
}

// companion joins an audience member to room "fuzz" for the rest of the
// input and returns its id. Its messages are read and dropped.
func companion(ctx context.Context, t *testing.T, r *relay) string {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, r.URL, nil)
	if err != nil {
		t.Fatalf("companion dial: %v", err)
	}
	id, err := joinRaw(conn, "fuzz", protocol.RoleAudience)
	if err != nil {
		_ = conn.Close()
		t.Fatalf("companion join: %v", err)
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"leave"}`))
		_ = conn.Close()
		<-drained
	})
	return id
}

// joinRaw joins on conn and returns the participant id from joined. An
// error message from the relay comes back as a *joinError with its code.
func joinRaw(conn *websocket.Conn, room, role string) (string, error) {
	_ = conn.SetReadDeadline(time.Now().Add(fuzzAnswerWait))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	join := fmt.Sprintf(`{"type":"join","room":%q,"name":"check","role":%q}`, room, role)
	if err := conn.WriteMessage(websocket.TextMessage, []byte(join)); err != nil {
		return "", err
	}
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return "", err
		}
		var m struct {
			Type, Code, Message string
			Participant         struct{ ID string }
		}
		if err := json.Unmarshal(data, &m); err != nil {
			return "", fmt.Errorf("relay sent %q: %w", data, err)
		}
		switch m.Type {
		case protocol.TypeJoined:
			return m.Participant.ID, nil
		case protocol.TypeError:
			return "", &joinError{code: m.Code, msg: m.Message}
		}
	}
}

type joinError struct{ code, msg string }

func (e *joinError) Error() string { return e.code + ": " + e.msg }

// healthJoin: a fresh client joins room as audience and gets joined. An
// error other than internal is retried a few times, so that a limit the
// relay may enforce on joins (rate, room count) is not taken for a broken
// relay.
func healthJoin(ctx context.Context, t *testing.T, r *relay, room string) {
	t.Helper()
	var err error
	for attempt := range 4 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 250 * time.Millisecond)
		}
		var conn *websocket.Conn
		conn, _, err = websocket.DefaultDialer.DialContext(ctx, r.URL, nil)
		if err != nil {
			continue
		}
		_, err = joinRaw(conn, room, protocol.RoleAudience)
		_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"leave"}`))
		_ = conn.Close()
		var je *joinError
		if err == nil || (errors.As(err, &je) && je.code == protocol.CodeInternal) {
			break
		}
	}
	if err != nil {
		t.Fatalf("the relay is no longer whole: a fresh client cannot join: %v", err)
	}
}

// finalJoin: a real client (package client) joins, the way the tests'
// clients do, after every input ran.
func finalJoin(f *testing.F, r *relay) {
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	c, err := client.Dial(ctx, client.Config{URL: r.URL, Room: "final", Name: "Final", Role: protocol.RoleHost, Loopback: true, Logger: relaytest.Logger()})
	if err != nil {
		f.Errorf("after the fuzz inputs, a client cannot join: %v", err)
		return
	}
	if err := c.Close(); err != nil {
		f.Logf("close the final client: %v", err)
	}
}
