// Package client is a Go client for the relay's signaling protocol,
// version 1 (docs/protocol.md), with pion/webrtc peer connections. The
// relay's integration tests and the load generator use it to act as real
// participants.
//
// A Client joins a room over the WebSocket (Dial), answers the relay's
// offers on its sub peer connection, delivers remote tracks on Tracks and
// other server messages on Events, and can publish one Opus track
// (Publish). Every method is safe for concurrent use. Close ends every
// goroutine the client started.
package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lianmai/relay/protocol"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// Config says how to join. Only URL is required; Room, Name, Role and
// Token are sent as given (the relay validates them), so tests can send bad
// ones.
type Config struct {
	URL   string // ws://127.0.0.1:port/ws
	Room  string
	Name  string
	Role  string // host, guest or audience; empty means the relay's default (audience)
	Token string // when the relay requires tokens
	ID    string // optional id of the join message
	// Resume is the resume token of an earlier session (its
	// Joined().Resume): within the relay's grace period the join takes
	// that participant over (Joined().Resumed), with new peer connections.
	Resume string
	// Listen is what the client receives while in the audience:
	// protocol.ListenMix (one track, the room's mix, MediaStream id
	// "mix"), protocol.ListenTracks (one per publisher), or empty for the
	// relay's default. Joined().Listen says what the relay gave.
	Listen string
	// Relays are other relays of the same cluster (their /ws URLs). When
	// URL cannot be reached (its WebSocket does not open: the relay died
	// or is restarting), Dial tries these in order; any relay routes the
	// join (docs/cluster.md). A resume token from another relay there
	// leads to a fresh join (Joined().Resumed false).
	Relays []string

	// Loopback restricts ICE to loopback UDP4 host candidates without mDNS,
	// for tests and local runs.
	Loopback bool
	// NetworkTypes, if set, are the only ICE network types the client
	// gathers and uses (with Loopback they replace its UDP4): TCP4 alone
	// is a client whose network blocks UDP.
	NetworkTypes []webrtc.NetworkType
	// NetDialContext, if set, opens the WebSocket's TCP connection (the
	// load generator uses it to dial from a chosen local address); nil
	// dials with a net.Dialer.
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// ICETransportPolicy "relay" uses TURN relay candidates only (as a
	// browser's iceTransportPolicy); zero: all.
	ICETransportPolicy webrtc.ICETransportPolicy
	// The peer connections use the relay's ice_servers from joined (as a
	// browser page does), unless IgnoreICEServers; ICEServerURLs, if set,
	// keeps only the URLs it returns true for (a test picks one
	// transport).
	IgnoreICEServers bool
	ICEServerURLs    func(url string) bool
	// TLSConfig, if set, is used for a wss:// URL (a private CA's
	// RootCAs, say) and for TURN over TLS (turns: ice_servers).
	TLSConfig *tls.Config
	// DisableNACK leaves out NACK: by default Opus is registered with RTCP
	// feedback "nack" and pion's NACK generator and responder run on both
	// peer connections. Sender and receiver reports run either way.
	DisableNACK bool
	// ReceiveInterceptor, if set, is added to the sub peer connection's
	// interceptors first, before the NACK generator and the receiver
	// reports: packets it drops look lost to them (to simulate loss).
	ReceiveInterceptor interceptor.Factory
	// SendInterceptor, if set, is added to the pub peer connection's
	// interceptors first, before the NACK responder and the sender
	// reports: it sits between them and the network, so a packet it drops
	// is lost on the wire after the responder kept it, and the responder's
	// retransmission (which passes through it too) can repair the loss.
	SendInterceptor interceptor.Factory
	// OnUDPSocket, if set, is called with every UDP socket the client's
	// ICE agents open, before they use it; an error fails the connection.
	// The load generator's sink listeners filter media out of theirs in
	// the kernel (loadtest's sink_audience).
	OnUDPSocket func(*net.UDPConn) error
	// NoRTCPReports leaves out pion's sender and receiver report
	// interceptors; with DisableNACK the client runs no interceptor at
	// all, as the receivers of docs/performance.md's comparisons.
	NoRTCPReports bool
	// Logger gets the client's and pion's logs; nil discards them.
	Logger *slog.Logger
}

const (
	eventsBuffer = 1024
	tracksBuffer = 64
	writeTimeout = 10 * time.Second
)

// Client is one participant. Create it with Dial.
type Client struct {
	cfg    Config
	log    *slog.Logger
	ws     *websocket.Conn
	joined protocol.Joined
	knet   *killNet
	sub    *peer

	writeMu sync.Mutex // serializes writes to ws: gorilla allows one writer at a time

	events        chan any          // sent to only by the reader, dropping the oldest when full; received by the user; never closed
	droppedEvents atomic.Uint64     // events dropped because events was full
	tracks        chan *RemoteTrack // sent to by pion's OnTrack goroutines, each giving up on closing; received by the user; never closed

	early     [][]byte       // messages read by Dial before joined that the reader dispatches first; owned by the reader
	closing   chan struct{}  // closed when Close starts; tells waiters and OnTrack senders to give up
	readDone  chan struct{}  // closed by the reader when it ends (Done)
	closeDone chan struct{}  // closed when Close has finished
	wg        sync.WaitGroup // goroutines other than the reader (the pub RTCP reader); Add only under mu while !closed
	closeCode atomic.Int64   // close code of the server's close frame, 0 if none
	nextID    atomic.Uint64  // for generated message ids

	mu       sync.Mutex // guards the fields below, and peer.pc of sub and pub
	closed   bool
	pub      *peer // the current or last Publish attempt; nil before
	pubBusy  bool  // a Publish is running or has succeeded
	subOffer string
	waiters  map[string]chan any // by message id; each buffered 1 and sent to once, by the reader, which deletes it
	pubReply chan any            // answers on pub that matched no waiter; buffered 1; sent to by the reader without blocking
	closeErr error               // Close's result; written before closeDone is closed, read after
}

// MaxRedirects is how many times Dial follows a cluster's redirect (error
// code redirect: another relay serves the room) before it gives up.
const MaxRedirects = 3

// Dial connects to the relay, joins and waits for `joined`. A relay of a
// cluster that does not serve the room answers with error code redirect
// and a URL: Dial sends the same join there, at most MaxRedirects times
// (URL says where it joined). If the relay answers with another `error`,
// Dial closes the connection and returns a *ServerError. ctx bounds the
// dials and the waits; once Dial returns, the client runs until Close,
// Drop or Leave.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	c, err := dialFollowing(ctx, cfg)
	for _, u := range cfg.Relays {
		if !errors.Is(err, errUnreachable) || ctx.Err() != nil {
			break
		}
		if cfg.Logger != nil {
			cfg.Logger.Debug("relay unreachable: trying another of the cluster", "err", err, "next", u)
		}
		next := cfg
		next.URL = u
		c, err = dialFollowing(ctx, next)
	}
	return c, err
}

// errUnreachable marks a dial whose WebSocket did not open.
var errUnreachable = errors.New("relay unreachable")

// dialFollowing dials cfg.URL and follows redirects.
func dialFollowing(ctx context.Context, cfg Config) (*Client, error) {
	for hop := 0; ; hop++ {
		c, err := dialOnce(ctx, cfg)
		var se *ServerError
		if !errors.As(err, &se) || se.Code != protocol.CodeRedirect || se.URL == "" {
			return c, err
		}
		if hop == MaxRedirects {
			return nil, fmt.Errorf("client: more than %d redirects (last to %s): %w", MaxRedirects, se.URL, err)
		}
		if cfg.Logger != nil {
			cfg.Logger.Debug("redirected", "from", cfg.URL, "to", se.URL, "room", cfg.Room)
		}
		cfg.URL = se.URL
	}
}

// URL is the relay the client joined (after any redirects).
func (c *Client) URL() string { return c.cfg.URL }

// dialOnce dials cfg.URL and joins there.
func dialOnce(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("client: Config.URL is empty")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	knet, err := newKillNet(cfg.OnUDPSocket)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}

	log.Debug("dialing", "url", cfg.URL, "room", cfg.Room)
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second, NetDialContext: cfg.NetDialContext, TLSClientConfig: cfg.TLSConfig}
	ws, resp, err := dialer.DialContext(ctx, cfg.URL, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("client: dial %s: %w (%s)", cfg.URL, err, refusal(resp))
		}
		return nil, fmt.Errorf("client: dial %s: %w: %w", cfg.URL, errUnreachable, err)
	}
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}

	c := &Client{
		cfg:       cfg,
		log:       log,
		ws:        ws,
		knet:      knet,
		sub:       &peer{name: protocol.PCSub},
		events:    make(chan any, eventsBuffer),
		tracks:    make(chan *RemoteTrack, tracksBuffer),
		closing:   make(chan struct{}),
		readDone:  make(chan struct{}),
		closeDone: make(chan struct{}),
		waiters:   make(map[string]chan any),
		pubReply:  make(chan any, 1),
	}
	if err := c.join(ctx); err != nil {
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = ws.Close()
		return nil, err
	}
	log.Debug("joined", "id", c.joined.Participant.ID)
	go c.readLoop()
	return c, nil
}

// join sends join and reads until joined or error, before the reader
// starts.
func (c *Client) join(ctx context.Context) error {
	// Unblock the read below when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = c.ws.NetConn().Close() })
	defer stop()

	version := protocol.Version
	join := &protocol.Join{
		Header:  protocol.Header{Type: protocol.TypeJoin, ID: c.cfg.ID},
		Room:    c.cfg.Room,
		Name:    c.cfg.Name,
		Role:    c.cfg.Role,
		Token:   c.cfg.Token,
		Version: &version,
		Resume:  c.cfg.Resume,
		Listen:  c.cfg.Listen,
	}
	if err := c.Send(join); err != nil {
		return fmt.Errorf("client: send join: %w", err)
	}
	for {
		typ, data, err := c.ws.ReadMessage()
		if ctx.Err() != nil {
			return fmt.Errorf("client: waiting for joined: %w", ctx.Err())
		}
		if err != nil {
			return fmt.Errorf("client: waiting for joined: %w", err)
		}
		if typ != websocket.TextMessage {
			continue
		}
		var h struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(data, &h); err != nil {
			return fmt.Errorf("client: waiting for joined: bad message from relay: %w", err)
		}
		switch h.Type {
		case protocol.TypeJoined:
			if err := json.Unmarshal(data, &c.joined); err != nil {
				return fmt.Errorf("client: decode joined: %w", err)
			}
			return nil
		case protocol.TypeError:
			var e protocol.Error
			if err := json.Unmarshal(data, &e); err != nil {
				return fmt.Errorf("client: decode error: %w", err)
			}
			return newServerError(&e)
		default:
			c.early = append(c.early, data)
		}
	}
}

// Joined returns the relay's joined message.
func (c *Client) Joined() protocol.Joined { return c.joined }

// ID returns our participant id.
func (c *Client) ID() string { return c.joined.Participant.ID }

// Events delivers every server message except offer, answer, candidate and
// pong, decoded into its protocol type (a pointer: *protocol.TrackPublished,
// *protocol.Error, ...) or, for types protocol lacks, a map[string]any.
// When it is full the oldest event is dropped (see DroppedEvents). It is
// never closed; see Done.
func (c *Client) Events() <-chan any { return c.events }

// DroppedEvents returns how many events were dropped because Events was
// full.
func (c *Client) DroppedEvents() uint64 { return c.droppedEvents.Load() }

// Tracks delivers each remote track of the sub peer connection. It is
// never closed.
func (c *Client) Tracks() <-chan *RemoteTrack { return c.tracks }

// Done is closed when the WebSocket reader ends: the relay closed the
// connection, it failed, or the client was closed.
func (c *Client) Done() <-chan struct{} { return c.readDone }

// CloseCode returns the code of the relay's WebSocket close frame, or 0 if
// none has arrived.
func (c *Client) CloseCode() int { return int(c.closeCode.Load()) }

// Send marshals msg to JSON and sends it as one text frame.
func (c *Client) Send(msg any) error {
	data, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("client: marshal %T: %w", msg, err)
	}
	return c.SendRaw(websocket.TextMessage, data)
}

// SendRaw sends one frame of the given type (websocket.TextMessage,
// websocket.BinaryMessage) as is, for tests of malformed input.
func (c *Client) SendRaw(messageType int, data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.ws.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("client: write: %w", err)
	}
	if err := c.ws.WriteMessage(messageType, data); err != nil {
		return fmt.Errorf("client: write: %w", err)
	}
	return nil
}

func (c *Client) sendCandidate(pc string, cand *protocol.ICECandidate) error {
	return c.Send(&protocol.Candidate{
		Header:    protocol.Header{Type: protocol.TypeCandidate},
		PC:        pc,
		Candidate: cand,
	})
}

// Request sends msg and returns the first server message that carries its
// id: the reply (*protocol.Pong, *protocol.SessionDescription, ...), or a
// *ServerError for an `error`. If msg carries an id, id must be empty or
// equal to it; if msg has none, id is set on it (a generated one if id is
// empty). msg must marshal to a JSON object. Only messages the relay
// replies to, or that fail, get an answer; for others Request waits until
// ctx ends.
func (c *Client) Request(ctx context.Context, msg any, id string) (any, error) {
	data, id, err := withID(msg, id, c.newID)
	if err != nil {
		return nil, fmt.Errorf("client: request: %w", err)
	}
	reply, err := c.register(id)
	if err != nil {
		return nil, err
	}
	defer c.unregister(id)
	if err := c.SendRaw(websocket.TextMessage, data); err != nil {
		return nil, err
	}
	select {
	case v := <-reply:
		if e, ok := v.(*protocol.Error); ok {
			return nil, newServerError(e)
		}
		return v, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("client: waiting for reply to %q: %w", id, ctx.Err())
	case <-c.readDone:
		return nil, fmt.Errorf("client: waiting for reply to %q: %w", id, ErrDisconnected)
	case <-c.closing:
		return nil, ErrClosed
	}
}

func (c *Client) newID() string {
	return "c" + strconv.FormatUint(c.nextID.Add(1), 10)
}

// withID returns msg as JSON carrying id, and the id.
func withID(msg any, id string, newID func() string) ([]byte, string, error) {
	data, err := json.Marshal(msg)
	if err != nil {
		return nil, "", fmt.Errorf("marshal %T: %w", msg, err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return nil, "", fmt.Errorf("%T does not marshal to a JSON object", msg)
	}
	var has string
	if raw, ok := obj["id"]; ok {
		if err := json.Unmarshal(raw, &has); err != nil {
			return nil, "", fmt.Errorf(`message "id" is not a string`)
		}
	}
	switch {
	case has != "" && id != "" && has != id:
		return nil, "", fmt.Errorf("message id %q differs from id %q", has, id)
	case has != "":
		return data, has, nil
	case id == "":
		id = newID()
	}
	obj["id"], _ = json.Marshal(id)
	data, err = json.Marshal(obj)
	if err != nil {
		return nil, "", fmt.Errorf("marshal %T: %w", msg, err)
	}
	return data, id, nil
}

// register makes a waiter for the next server message carrying id.
func (c *Client) register(id string) (<-chan any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if _, ok := c.waiters[id]; ok {
		return nil, fmt.Errorf("client: a request with id %q is already waiting", id)
	}
	ch := make(chan any, 1)
	c.waiters[id] = ch
	return ch, nil
}

func (c *Client) unregister(id string) {
	c.mu.Lock()
	delete(c.waiters, id)
	c.mu.Unlock()
}

// SubOfferSDP returns the last sub offer received, "" before the first.
func (c *Client) SubOfferSDP() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subOffer
}

// SubConnected waits until the sub peer connection is connected.
func (c *Client) SubConnected(ctx context.Context) error {
	if err := c.sub.state.waitConnected(ctx, c.closing); err != nil {
		return fmt.Errorf("client: sub: %w", err)
	}
	return nil
}

// Leave sends leave, waits for the relay to close the WebSocket, then
// closes the client. It returns a *CloseError if the close code is not
// 1000.
func (c *Client) Leave(ctx context.Context) error {
	if err := c.Send(&protocol.Leave{Header: protocol.Header{Type: protocol.TypeLeave}}); err != nil {
		_ = c.Close()
		return fmt.Errorf("client: leave: %w", err)
	}
	select {
	case <-c.readDone:
	case <-ctx.Done():
		_ = c.Close()
		return fmt.Errorf("client: waiting for the relay to close after leave: %w", ctx.Err())
	}
	closeErr := c.Close()
	if code := c.CloseCode(); code != protocol.CloseNormal {
		return &CloseError{Code: code}
	}
	return closeErr
}

// Drop ends the client abruptly, as a vanished peer: the ICE sockets are
// closed first (so no DTLS or SCTP close reaches the relay), then the
// WebSocket's TCP connection without a close frame, then both peer
// connections, without any signaling.
func (c *Client) Drop() {
	c.knet.kill()
	_ = c.Close()
}

// Close ends the client: it closes the WebSocket's TCP connection without
// a close frame, closes both peer connections and waits for every
// goroutine the client started. It is idempotent; later calls wait for
// the first and return its result.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.closeDone
		return c.closeErr
	}
	c.closed = true
	close(c.closing)
	c.mu.Unlock()

	_ = c.ws.Close()
	<-c.readDone // the reader made the sub peer connection; it is done now

	c.mu.Lock()
	pcs := []*webrtc.PeerConnection{c.sub.pc}
	if c.pub != nil {
		pcs = append(pcs, c.pub.pc)
	}
	c.mu.Unlock()
	var errs []error
	for _, pc := range pcs {
		if pc == nil {
			continue
		}
		if err := pc.GracefulClose(); err != nil {
			errs = append(errs, err)
		}
	}
	c.wg.Wait()

	if len(errs) > 0 {
		c.closeErr = fmt.Errorf("client: close: %w", errors.Join(errs...))
	}
	close(c.closeDone)
	return c.closeErr
}

// refusal describes an HTTP answer that refused the WebSocket upgrade:
// its status, what the relay says to do, and when to retry.
func refusal(resp *http.Response) string {
	msg := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if resp.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = resp.Body.Close()
		if text := strings.TrimSpace(string(body)); text != "" {
			msg += ": " + text
		}
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		msg += "; retry after " + ra + " s"
	}
	return msg
}
