package sfu

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Fuzz targets for the SDP the relay handles: withPtime, the one edit it
// makes to SDP text, and a real participant's Offer, AddCandidate and
// Answer, where pion parses whatever a client sends.
//
// Network safety: fuzzed descriptions and candidates name arbitrary
// addresses, and pion sends connectivity checks to them. The SFU here
// listens on a UDP socket bound to 127.0.0.1, from which the kernel
// refuses to send anywhere but loopback (EINVAL), mDNS is off and only UDP4
// is gathered, so no check leaves the machine. Run long fuzzing sessions
// in a network namespace of their own all the same (docs/reliability.md).

// chromeOffer is a pub offer as Chromium sends it: one send-only Opus
// track with audio levels, and a loopback host candidate.
var chromeOffer = crlf(
	"v=0",
	"o=- 6480463405012581435 2 IN IP4 127.0.0.1",
	"s=-",
	"t=0 0",
	"a=group:BUNDLE 0",
	"a=extmap-allow-mixed",
	"a=msid-semantic: WMS stream",
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
	"c=IN IP4 0.0.0.0",
	"a=rtcp:9 IN IP4 0.0.0.0",
	"a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host generation 0",
	"a=ice-ufrag:WnJk",
	"a=ice-pwd:cMnEfN0J9mP1wE3pcxbmXqGh",
	"a=ice-options:trickle",
	"a=fingerprint:sha-256 46:7C:39:C0:6B:D1:1A:3E:4C:2B:7E:13:95:07:54:2B:F5:31:A0:7B:1D:0C:E5:1B:3E:52:74:F1:9B:5E:2A:08",
	"a=setup:actpass",
	"a=mid:0",
	"a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
	"a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
	"a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
	"a=sendonly",
	"a=msid:stream mic",
	"a=rtcp-mux",
	"a=rtpmap:111 opus/48000/2",
	"a=rtcp-fb:111 transport-cc",
	"a=fmtp:111 minptime=10;useinbandfec=1",
	"a=rtpmap:63 red/48000/2",
	"a=fmtp:63 111/111",
	"a=rtpmap:9 G722/8000",
	"a=rtpmap:0 PCMU/8000",
	"a=rtpmap:8 PCMA/8000",
	"a=rtpmap:13 CN/8000",
	"a=rtpmap:110 telephone-event/48000",
	"a=rtpmap:126 telephone-event/8000",
	"a=ssrc:3735928559 cname:fuzz",
	"a=ssrc:3735928559 msid:stream mic",
)

// chromeSubAnswer answers the relay's first sub offer (one receive-only
// audio section, sfu/joinsection.go), as Chromium would: inactive.
var chromeSubAnswer = crlf(
	"v=0",
	"o=- 1409432829624786323 2 IN IP4 127.0.0.1",
	"s=-",
	"t=0 0",
	"a=group:BUNDLE 0",
	"a=msid-semantic: WMS",
	"m=audio 9 UDP/TLS/RTP/SAVPF 111",
	"c=IN IP4 0.0.0.0",
	"a=candidate:2 1 udp 2130706431 127.0.0.1 50001 typ host generation 0",
	"a=ice-ufrag:Qy7d",
	"a=ice-pwd:T2vXb4TqjJwJxWZ0mVh4Zk1r",
	"a=ice-options:trickle",
	"a=fingerprint:sha-256 0A:43:15:A3:29:E7:5C:77:1A:6A:6E:22:81:9C:4E:42:6F:50:24:9C:D8:0D:11:7B:51:72:A4:E9:73:E8:42:A1",
	"a=setup:active",
	"a=mid:0",
	"a=inactive",
	"a=rtcp-mux",
	"a=rtpmap:111 opus/48000/2",
	"a=fmtp:111 minptime=10;useinbandfec=1",
)

const chromeCandidate = "candidate:3 1 udp 2130706431 127.0.0.1 50002 typ host generation 0 ufrag WnJk network-id 1"

// FuzzSDP: withPtime never panics, is idempotent, changes nothing but
// adding a=ptime lines (and a final line ending), and keeps an SDP that
// pion parses parseable with the same sections. On an SDP as pion writes
// it, which is all the relay gives it, every audio section ends up with a
// ptime.
func FuzzSDP(f *testing.F) {
	for _, s := range []string{
		chromeOffer,
		chromeSubAnswer,
		crlf(concat(sdpSession, audioSection("0"), applicationSection("1"))...),
		crlf(concat(sdpSession, applicationSection("0"), audioSection("1", "a=ptime:20"), audioSection("2"))...),
		strings.TrimSuffix(crlf(concat(sdpSession, audioSection("0"))...), "\r\n"),
		strings.ReplaceAll(crlf(concat(sdpSession, audioSection("0"))...), "\r\n", "\n"),
		"",
		"\n",
		"m=audio ",
		"m=audio 9 RTP/AVP 0\r\nm=audio 9 RTP/AVP 0",
		"v=0\r\nm=video 9 RTP/AVP 96\r\na=ptime:10\r\nm=audio 9 RTP/AVP 0\r",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := withPtime(in)
		if again := withPtime(out); again != out {
			t.Fatalf("not idempotent:\n in  %q\n out %q\n again %q", in, out, again)
		}
		if in != "" && !strings.HasSuffix(out, "\n") {
			t.Fatalf("output does not end a line: %q", out)
		}
		if stripPtime(out) != stripPtime(in) {
			t.Fatalf("changed more than ptime lines:\n in  %q\n out %q", in, out)
		}
		audio := countLines(in, func(l string) bool { return strings.HasPrefix(l, "m=audio ") })
		isPtime := func(l string) bool { return l == "a=ptime:10\r\n" }
		if added := countLines(out, isPtime) - countLines(in, isPtime); added < 0 || added > audio {
			t.Fatalf("added %d ptime lines for %d audio sections:\n in  %q\n out %q", added, audio, in, out)
		}

		// pion's parser accepts some text that is no SDP at all ("0"), and
		// reads a last line without a line ending more leniently than one
		// with ("v= 0" parses, "v= 0\r\n" does not). withPtime ends that
		// line, so hold it to pion's verdict on the input with its last
		// line ended, for what starts as SDP.
		ended := in
		if !strings.HasSuffix(in, "\n") {
			ended += "\r\n"
		}
		var sdIn sdp.SessionDescription
		if !strings.HasPrefix(in, "v=") || sdIn.UnmarshalString(ended) != nil {
			return
		}
		var sdOut sdp.SessionDescription
		if err := sdOut.UnmarshalString(out); err != nil {
			t.Fatalf("pion parses the input but not the output: %v\n in  %q\n out %q", err, in, out)
		}
		if len(sdOut.MediaDescriptions) != len(sdIn.MediaDescriptions) {
			t.Fatalf("%d media sections became %d:\n in  %q\n out %q", len(sdIn.MediaDescriptions), len(sdOut.MediaDescriptions), in, out)
		}
		if canon, err := sdIn.Marshal(); err != nil || string(canon) != in {
			return // not as pion writes it: the relay never passes such text
		}
		for i, md := range sdOut.MediaDescriptions {
			if _, has := md.Attribute("ptime"); md.MediaName.Media == "audio" && !has {
				t.Fatalf("audio section %d has no ptime:\n in  %q\n out %q", i, in, out)
			}
		}
	})
}

// stripPtime is s without its a=ptime:10 lines, one line per "\n", line
// endings normalized: what withPtime must leave alone.
func stripPtime(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" && l != "a=ptime:10\r\n" {
			b.WriteString(strings.TrimRight(l, "\r\n"))
			b.WriteString("\n")
		}
	}
	return b.String()
}

// countLines counts the lines of s (each with its "\n") that match.
func countLines(s string, match func(string) bool) int {
	n := 0
	for _, l := range strings.SplitAfter(s, "\n") {
		if match(l) {
			n++
		}
	}
	return n
}

// fuzzSink records the answers on pub; it drops every other event.
type fuzzSink struct {
	mu      sync.Mutex
	answers []DescriptionEvent
}

func (s *fuzzSink) Send(ev Event) {
	if d, ok := ev.(DescriptionEvent); ok && d.PC == Pub {
		s.mu.Lock()
		s.answers = append(s.answers, d)
		s.mu.Unlock()
	}
}

func (s *fuzzSink) Close(Reason) {}

func (s *fuzzSink) takeAnswers() []DescriptionEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.answers
	s.answers = nil
	return a
}

// FuzzOffer: a host's pub offer, a pub candidate and an answer to the
// relay's sub offer, all arbitrary, go through a real participant and so
// through pion's SetRemoteDescription and AddICECandidate. Nothing panics;
// each method fails only with the sentinel error signaling maps to
// bad_request; an accepted offer is answered with an SDP that parses and
// asks for ptime on its audio. pion's goroutines make coverage vary from
// run to run: fuzz with -fuzzminimizetime 1x, as FuzzSession.
func FuzzOffer(f *testing.F) {
	f.Add(chromeOffer, chromeCandidate, chromeSubAnswer)
	f.Add(chromeOffer, "", "v=0")
	f.Add(strings.ReplaceAll(chromeOffer, "a=sendonly", "a=sendrecv"), "candidate:x", "")
	f.Add(strings.ReplaceAll(chromeOffer, "opus/48000/2", "PCMU/8000"), chromeCandidate, chromeSubAnswer)
	f.Add(crlf(concat(sdpSession, audioSection("0"), applicationSection("1"))...), "candidate:1 1 tcp 1 127.0.0.1 9 typ host tcptype passive", chromeSubAnswer)
	f.Add("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", "candidate:1 1 udp 1 ::1 9 typ host", "garbage")
	s := newLoopbackSFU(f, time.Second)
	f.Fuzz(func(t *testing.T, offer, cand, answer string) {
		sink := &fuzzSink{}
		p, err := s.Join(JoinParams{Room: "fuzz", Name: "fuzzer", Role: RoleHost, Sink: sink})
		if err != nil {
			t.Fatalf("join: %v", err)
		}
		defer p.Leave()

		err = p.Offer(sink, "o", offer)
		checkSentinel(t, "Offer", err, ErrBadDescription)
		answers := sink.takeAnswers()
		if err == nil {
			if len(answers) != 1 || answers[0].RequestID != "o" || answers[0].Type != webrtc.SDPTypeAnswer {
				t.Fatalf("accepted offer answered with %+v", answers)
			}
			var sd sdp.SessionDescription
			if err := sd.UnmarshalString(answers[0].SDP); err != nil {
				t.Fatalf("the relay's answer does not parse: %v\n%q", err, answers[0].SDP)
			}
			for i, md := range sd.MediaDescriptions {
				if _, has := md.Attribute("ptime"); md.MediaName.Media == "audio" && !has {
					t.Fatalf("answer's audio section %d has no ptime:\n%q", i, answers[0].SDP)
				}
			}
		} else if len(answers) != 0 {
			t.Fatalf("refused offer (%v) answered anyway", err)
		}

		mid := "0"
		err = p.AddCandidate(sink, Pub, &webrtc.ICECandidateInit{Candidate: cand, SDPMid: &mid})
		checkSentinel(t, "AddCandidate", err, ErrBadCandidate)

		err = p.Answer(sink, answer)
		checkSentinel(t, "Answer", err, ErrBadDescription)
	})
}

// checkSentinel fails t unless err is nil or wraps want: any other error
// reaches the client as internal.
func checkSentinel(t *testing.T, what string, err, want error) {
	t.Helper()
	if err != nil && !errors.Is(err, want) {
		t.Fatalf("%s failed with %v, which does not wrap %v: the client would get internal", what, err, want)
	}
}
