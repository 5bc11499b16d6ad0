package sfu

import (
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

// crlf joins SDP lines the way they go on the wire.
func crlf(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n" }

var sdpSession = []string{
	"v=0",
	"o=- 4215775240449105457 2 IN IP4 127.0.0.1",
	"s=-",
	"t=0 0",
	"a=group:BUNDLE 0 1",
	"a=msid-semantic: WMS",
}

func audioSection(mid string, extra ...string) []string {
	return append([]string{
		"m=audio 9 UDP/TLS/RTP/SAVPF 111",
		"c=IN IP4 0.0.0.0",
		"a=rtcp:9 IN IP4 0.0.0.0",
		"a=ice-ufrag:abcd",
		"a=ice-pwd:abcdefghijklmnopqrstuvwx",
		"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF",
		"a=setup:actpass",
		"a=mid:" + mid,
		"a=sendrecv",
		"a=rtcp-mux",
		"a=rtpmap:111 opus/48000/2",
		"a=rtcp-fb:111 nack",
		"a=fmtp:111 minptime=10;useinbandfec=1",
	}, extra...)
}

func applicationSection(mid string) []string {
	return []string{
		"m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
		"c=IN IP4 0.0.0.0",
		"a=ice-ufrag:abcd",
		"a=ice-pwd:abcdefghijklmnopqrstuvwx",
		"a=setup:actpass",
		"a=mid:" + mid,
		"a=sctp-port:5000",
	}
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// sections splits an SDP into its session part and its m-sections.
func sections(s string) []string {
	var out []string
	start := 0
	for {
		i := strings.Index(s[start+1:], "\r\nm=")
		if i < 0 {
			return append(out, s[start:])
		}
		end := start + 1 + i + 2
		out = append(out, s[start:end])
		start = end
	}
}

func TestWithPtime(t *testing.T) {
	tests := []struct {
		name string
		in   string
		// wantPtime is, per part (session first, then each m-section),
		// the a=ptime lines it must hold.
		wantPtime [][]string
		unchanged bool
	}{
		{
			name:      "one audio section",
			in:        crlf(concat(sdpSession, audioSection("0"))...),
			wantPtime: [][]string{nil, {"a=ptime:10"}},
		},
		{
			name:      "audio and application",
			in:        crlf(concat(sdpSession, audioSection("0"), applicationSection("1"))...),
			wantPtime: [][]string{nil, {"a=ptime:10"}, nil},
		},
		{
			name:      "application then audio",
			in:        crlf(concat(sdpSession, applicationSection("0"), audioSection("1"))...),
			wantPtime: [][]string{nil, nil, {"a=ptime:10"}},
		},
		{
			name:      "ptime already present",
			in:        crlf(concat(sdpSession, audioSection("0", "a=ptime:20"), applicationSection("1"))...),
			wantPtime: [][]string{nil, {"a=ptime:20"}, nil},
			unchanged: true,
		},
		{
			name:      "two audio sections",
			in:        crlf(concat(sdpSession, audioSection("0"), audioSection("1"))...),
			wantPtime: [][]string{nil, {"a=ptime:10"}, {"a=ptime:10"}},
		},
		{
			name:      "two audio sections one with ptime",
			in:        crlf(concat(sdpSession, audioSection("0", "a=ptime:20"), audioSection("1"))...),
			wantPtime: [][]string{nil, {"a=ptime:20"}, {"a=ptime:10"}},
		},
		{
			name:      "no final line ending",
			in:        strings.TrimSuffix(crlf(concat(sdpSession, audioSection("0"))...), "\r\n"),
			wantPtime: [][]string{nil, {"a=ptime:10"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := withPtime(tt.in)
			if tt.unchanged && out != tt.in {
				t.Errorf("withPtime changed an SDP that needs no change:\n got %q\nwant %q", out, tt.in)
			}
			if !strings.HasSuffix(out, "\r\n") {
				t.Errorf("output does not end with CRLF: %q", out)
			}
			for i, l := range strings.SplitAfter(out, "\n") {
				if l != "" && !strings.HasSuffix(l, "\r\n") {
					t.Errorf("line %d %q does not end with CRLF", i, l)
				}
			}
			// Nothing but the ptime lines changed.
			strip := func(s string) string {
				var b strings.Builder
				for _, l := range strings.SplitAfter(s, "\n") {
					if l != "" && !strings.HasPrefix(l, "a=ptime:10") {
						b.WriteString(strings.TrimRight(l, "\r\n"))
						b.WriteString("\n")
					}
				}
				return b.String()
			}
			if strip(out) != strip(tt.in) {
				t.Errorf("withPtime changed more than the ptime lines:\n got %q\nwant %q", out, tt.in)
			}
			parts := sections(out)
			if len(parts) != len(tt.wantPtime) {
				t.Fatalf("got %d parts, want %d:\n%s", len(parts), len(tt.wantPtime), out)
			}
			for i, p := range parts {
				var got []string
				for _, l := range strings.Split(p, "\r\n") {
					if strings.HasPrefix(l, "a=ptime:") {
						got = append(got, l)
					}
				}
				if strings.Join(got, "|") != strings.Join(tt.wantPtime[i], "|") {
					t.Errorf("part %d has ptime lines %q, want %q:\n%s", i, got, tt.wantPtime[i], p)
				}
			}

			var sd sdp.SessionDescription
			if err := sd.UnmarshalString(out); err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, out)
			}
			if len(sd.MediaDescriptions) != len(parts)-1 {
				t.Fatalf("parsed %d media sections, want %d", len(sd.MediaDescriptions), len(parts)-1)
			}
			for i, md := range sd.MediaDescriptions {
				v, has := md.Attribute("ptime")
				want := tt.wantPtime[i+1]
				switch {
				case len(want) == 0 && has:
					t.Errorf("media %d (%s) parsed with ptime %q, want none", i, md.MediaName.Media, v)
				case len(want) == 1 && (!has || "a=ptime:"+v != want[0]):
					t.Errorf("media %d (%s) parsed with ptime %q (present %v), want %q", i, md.MediaName.Media, v, has, want[0])
				}
			}
		})
	}
}
