package sfu

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lianmai/relay/media"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// The takeover of a sub connection (issue 19; media/takeover.go). Pion
// makes a sub connection (ICE, DTLS, the first offers); once the
// connection is direct (the relay holds its keys, its pair is UDP on the
// relay's port and the socket readers read its RTCP) and has been up for
// takeoverDelay, the relay takes it over: the socket readers answer the
// client's ICE checks, pion's connection is closed without a word to the
// client (what it would write is dropped), and the relay writes the
// connection's later offers and reads its answers itself, from the last
// description pion made (takenSub). A listener then costs no goroutine,
// no buffer and no timer of pion's. The relay is ICE lite on the
// connections it may take over (direct.go), so that the client, the
// controlling side, nominates every pair, an ICE restart's included.

// takeoverDelay is Config.TakeoverAfter's default.
const takeoverDelay = 3 * time.Second

// takenConsentTimeout is how long a taken-over connection's client may
// go unheard (no ICE check, no RTCP) before the connection counts as
// failed (RFC 7675's consent timeout; browsers check every 5 s or so);
// takenCheckEvery is how often that is looked at.
const (
	takenConsentTimeout = 30 * time.Second
	takenCheckEvery     = 5 * time.Second
)

// errTakenAnswer: an answer the relay cannot match with its offer.
var errTakenAnswer = errors.New("the answer does not match the relay's offer")

// takenSub is a taken-over sub connection's negotiation state: the
// relay's last offer (pion's last, to begin with) and what each media
// section carries. Guarded by the participant's negMu.
type takenSub struct {
	sc       *media.SubConn
	desc     *sdp.SessionDescription // the last offer
	sections []*takenSection         // desc's media sections, in order
	creds    media.ICECreds
	version  uint64
	template *sdp.MediaDescription // an audio section: new sections copy its codec lines
}

// takenSection is one media section of a taken-over connection.
type takenSection struct {
	mid   string
	down  *media.DownTrack // the track it carries; nil: free (recvonly, as pion leaves it)
	ssrc  uint32
	bound bool // the answer accepted down: it is bound
}

// newTakenSub reads pc's current descriptions and which of its
// transceivers carries which of down's tracks.
func newTakenSub(pc *webrtc.PeerConnection, down map[*media.UpTrack]subTrack, sc *media.SubConn) (*takenSub, error) {
	local, remote := pc.CurrentLocalDescription(), pc.CurrentRemoteDescription()
	if local == nil || remote == nil {
		return nil, errors.New("no negotiated descriptions")
	}
	desc := &sdp.SessionDescription{}
	if err := desc.UnmarshalString(local.SDP); err != nil {
		return nil, fmt.Errorf("the relay's own description: %w", err)
	}
	ans := &sdp.SessionDescription{}
	if err := ans.UnmarshalString(remote.SDP); err != nil {
		return nil, fmt.Errorf("the client's answer: %w", err)
	}
	ts := &takenSub{sc: sc, desc: desc, version: desc.Origin.SessionVersion}
	ts.creds.LocalUfrag, _ = sdpAttr(desc, 0, "ice-ufrag")
	ts.creds.LocalPwd, _ = sdpAttr(desc, 0, "ice-pwd")
	ts.creds.RemoteUfrag, _ = sdpAttr(ans, 0, "ice-ufrag")
	ts.creds.RemotePwd, _ = sdpAttr(ans, 0, "ice-pwd")
	if ts.creds.LocalUfrag == "" || ts.creds.LocalPwd == "" || ts.creds.RemoteUfrag == "" || ts.creds.RemotePwd == "" {
		return nil, errors.New("no ICE credentials in the descriptions")
	}
	byMid := map[string]*takenSection{}
	for i, md := range desc.MediaDescriptions {
		if md.MediaName.Media != "audio" {
			return nil, fmt.Errorf("a %s section: only audio is taken over", md.MediaName.Media)
		}
		mid, _ := md.Attribute("mid")
		s := &takenSection{mid: mid}
		ts.sections = append(ts.sections, s)
		byMid[mid] = s
		if i == 0 {
			ts.template = md
		}
	}
	if ts.template == nil {
		return nil, errors.New("no media section")
	}
	for _, tr := range pc.GetTransceivers() {
		s := byMid[tr.Mid()]
		if s == nil || tr.Sender() == nil {
			continue
		}
		for _, st := range down {
			if st.sender != tr.Sender() {
				continue
			}
			ssrc, ok := st.down.SSRC()
			if !ok {
				return nil, fmt.Errorf("track %s is not bound yet", st.down.ID())
			}
			s.down, s.ssrc, s.bound = st.down, ssrc, true
		}
	}
	for _, st := range down {
		if !slices.ContainsFunc(ts.sections, func(s *takenSection) bool { return s.down == st.down }) {
			return nil, fmt.Errorf("track %s has no media section", st.down.ID())
		}
	}
	return ts, nil
}

// sdpAttr is the value of attribute key of media section i, or of the
// session.
func sdpAttr(d *sdp.SessionDescription, i int, key string) (string, bool) {
	if i < len(d.MediaDescriptions) {
		if v, ok := d.MediaDescriptions[i].Attribute(key); ok {
			return v, true
		}
	}
	return d.Attribute(key)
}

// add gives d a free section, or a new one.
func (ts *takenSub) add(d *media.DownTrack) {
	ssrc := randomSSRC()
	for _, s := range ts.sections {
		if s.down == nil {
			s.down, s.ssrc, s.bound = d, ssrc, false
			return
		}
	}
	mid := 0
	for _, s := range ts.sections {
		if n, err := strconv.Atoi(s.mid); err == nil && n >= mid {
			mid = n + 1
		}
	}
	ts.sections = append(ts.sections, &takenSection{mid: strconv.Itoa(mid), down: d, ssrc: ssrc})
}

// remove frees d's section (recvonly in the next offer, as pion leaves a
// section whose track was removed).
func (ts *takenSub) remove(d *media.DownTrack) {
	for _, s := range ts.sections {
		if s.down == d {
			s.down, s.ssrc, s.bound = nil, 0, false
		}
	}
}

// offer is the connection's next offer; with restart, new ICE
// credentials, which the socket readers accept at once.
func (ts *takenSub) offer(restart bool) (string, error) {
	if restart {
		ts.creds.LocalUfrag, ts.creds.LocalPwd = randomICEString(16), randomICEString(32)
		ts.sc.RestartICE(ts.creds)
	}
	ts.version++
	d := *ts.desc
	d.Origin.SessionVersion = ts.version
	d.MediaDescriptions = nil
	var mids []string
	for i, s := range ts.sections {
		src := ts.template
		if i < len(ts.desc.MediaDescriptions) {
			src = ts.desc.MediaDescriptions[i]
		}
		d.MediaDescriptions = append(d.MediaDescriptions, ts.section(src, s))
		mids = append(mids, s.mid)
	}
	d.Attributes = slices.DeleteFunc(slices.Clone(d.Attributes), func(a sdp.Attribute) bool { return a.Key == "group" })
	d.Attributes = append(d.Attributes, sdp.Attribute{Key: "group", Value: "BUNDLE " + strings.Join(mids, " ")})
	out, err := d.Marshal()
	if err != nil {
		return "", err
	}
	ts.desc = &d
	return string(out), nil
}

// section is src rewritten for s: its mid, the connection's ICE
// credentials, and its track's lines, as pion writes them.
func (ts *takenSub) section(src *sdp.MediaDescription, s *takenSection) *sdp.MediaDescription {
	md := *src
	drop := map[string]bool{"mid": true, "ice-ufrag": true, "ice-pwd": true, "msid": true, "ssrc": true, "ssrc-group": true,
		"sendrecv": true, "sendonly": true, "recvonly": true, "inactive": true}
	md.Attributes = slices.DeleteFunc(slices.Clone(src.Attributes), func(a sdp.Attribute) bool { return drop[a.Key] })
	md.Attributes = append(md.Attributes,
		sdp.Attribute{Key: "mid", Value: s.mid},
		sdp.Attribute{Key: "ice-ufrag", Value: ts.creds.LocalUfrag},
		sdp.Attribute{Key: "ice-pwd", Value: ts.creds.LocalPwd})
	if s.down == nil {
		md.Attributes = append(md.Attributes, sdp.Attribute{Key: "recvonly"})
		return &md
	}
	stream, track := s.down.StreamID(), s.down.ID()
	ssrc := strconv.FormatUint(uint64(s.ssrc), 10)
	md.Attributes = append(md.Attributes,
		sdp.Attribute{Key: "ssrc", Value: ssrc + " cname:" + stream},
		sdp.Attribute{Key: "ssrc", Value: ssrc + " msid:" + stream + " " + track},
		sdp.Attribute{Key: "ssrc", Value: ssrc + " mslabel:" + stream},
		sdp.Attribute{Key: "ssrc", Value: ssrc + " label:" + track},
		sdp.Attribute{Key: "msid", Value: stream + " " + track},
		sdp.Attribute{Key: "sendrecv"})
	return &md
}

// answer takes the client's answer to the last offer: the tracks of the
// sections it accepts are bound and start flowing.
func (ts *takenSub) answer(raw string) error {
	ans := &sdp.SessionDescription{}
	if err := ans.UnmarshalString(raw); err != nil {
		return err
	}
	if len(ans.MediaDescriptions) != len(ts.sections) {
		return fmt.Errorf("%w: %d media sections, the offer has %d", errTakenAnswer, len(ans.MediaDescriptions), len(ts.sections))
	}
	pt := strconv.Itoa(int(media.Opus.PayloadType))
	for i, s := range ts.sections {
		md := ans.MediaDescriptions[i]
		if mid, _ := md.Attribute("mid"); mid != s.mid {
			return fmt.Errorf("%w: section %d is mid %q, the offer's %q", errTakenAnswer, i, mid, s.mid)
		}
		if s.down == nil || s.bound {
			continue
		}
		if md.MediaName.Port.Value == 0 || !slices.Contains(md.MediaName.Formats, pt) {
			continue // refused: the track is not sent
		}
		s.down.BindTaken(s.ssrc, uint8(media.Opus.PayloadType))
		s.bound = true
	}
	ufrag, _ := sdpAttr(ans, 0, "ice-ufrag")
	pwd, _ := sdpAttr(ans, 0, "ice-pwd")
	if ufrag != "" && pwd != "" {
		ts.creds.RemoteUfrag, ts.creds.RemotePwd = ufrag, pwd
		ts.sc.SetRemoteICE(ufrag, pwd)
	}
	return nil
}

func randomSSRC() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// randomICEString is n ICE characters (RFC 8445's ice-char: letters,
// digits, + and /).
func randomICEString(n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

// tryTakeOver takes p's sub connection pc over from pion if it is still
// p's, direct, and not in the middle of a negotiation (then it tries
// again a little later).
func (p *Participant) tryTakeOver(pc *webrtc.PeerConnection, sc *media.SubConn) {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.subPC != pc || p.subConn != sc || p.taken != nil || p.isGone() {
		return
	}
	if p.offerOutstanding || p.needOffer || p.syncQueued.Load() {
		time.AfterFunc(time.Second, func() { p.tryTakeOver(pc, sc) })
		return
	}
	if !sc.ReadsRTCPDirectly() || pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		return // TCP, TURN, or not up: pion keeps it
	}
	ts, err := newTakenSub(pc, p.down, sc)
	if err == nil {
		err = sc.TakeOver(ts.creds)
	}
	if err != nil {
		p.log.Debug("sub connection stays pion's", "err", err)
		return
	}
	p.taken = ts
	p.sfu.cfg.Metrics.Takeovers.Inc()
	// Let pion's connection go whole: nothing of the relay's refers to it
	// (so the GC frees its buffers and state), its callbacks do nothing
	// (its closing is no failure), and what it writes to the client as it
	// closes is dropped.
	for up, st := range p.down {
		st.sender = nil
		p.down[up] = st
	}
	p.subPC = nil
	quiet(pc)
	go func() { _ = pc.Close() }()
	p.watchTaken(sc)
}

// quiet replaces the handlers the relay set on a sub connection with
// ones that do nothing.
func quiet(pc *webrtc.PeerConnection) {
	pc.OnConnectionStateChange(func(webrtc.PeerConnectionState) {})
	pc.OnICECandidate(func(*webrtc.ICECandidate) {})
	dtls := pc.SCTP().Transport()
	dtls.OnStateChange(func(webrtc.DTLSTransportState) {})
	dtls.ICETransport().OnSelectedCandidatePairChange(func(*webrtc.ICECandidatePair) {})
}

// watchTaken declares a taken-over connection failed, as pion's ICE agent
// would, once its client has gone unheard for takenConsentTimeout.
func (p *Participant) watchTaken(sc *media.SubConn) {
	var check func()
	check = func() {
		p.negMu.Lock()
		current := p.subConn == sc && p.taken != nil
		p.negMu.Unlock()
		if !current || p.isGone() {
			return
		}
		if silent := time.Duration(media.Now() - sc.LastHeard()); silent > takenConsentTimeout {
			p.log.Info("the client of a taken-over sub connection went silent", "for", silent.Round(time.Second))
			p.startGrace()
			return
		}
		time.AfterFunc(takenCheckEvery, check)
	}
	time.AfterFunc(takenCheckEvery, check)
}

// dropTakenLocked ends a taken-over connection (replaced or closed): the
// socket readers forget it. negMu is held.
func (p *Participant) dropTakenLocked() {
	if p.taken != nil {
		p.taken.sc.Stop()
		p.taken = nil
	}
}
