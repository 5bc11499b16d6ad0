package whiptest

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/pion/webrtc/v4"
)

// Link is one Link header entry (RFC 8288): a target and its parameters,
// names lower-cased, values unquoted.
type Link struct {
	URL    string
	Params map[string]string
}

// ParseLinks parses every Link header of h, as a client must read them:
// several per header line (comma-separated) or one per line, parameters
// as tokens or quoted strings.
func ParseLinks(h http.Header) ([]Link, error) {
	var links []Link
	for _, v := range h.Values("Link") {
		for v = strings.TrimSpace(v); v != ""; v = strings.TrimSpace(v) {
			l, rest, err := parseLink(v)
			if err != nil {
				return nil, fmt.Errorf("Link %q: %w", v, err)
			}
			links = append(links, l)
			v, _ = strings.CutPrefix(strings.TrimSpace(rest), ",")
		}
	}
	return links, nil
}

// parseLink reads one link-value from the start of s and returns the rest.
func parseLink(s string) (Link, string, error) {
	if !strings.HasPrefix(s, "<") {
		return Link{}, "", fmt.Errorf("no <target> at %q", s)
	}
	end := strings.IndexByte(s, '>')
	if end < 0 {
		return Link{}, "", fmt.Errorf("unterminated <target>")
	}
	l := Link{URL: s[1:end], Params: map[string]string{}}
	s = strings.TrimSpace(s[end+1:])
	for strings.HasPrefix(s, ";") {
		s = strings.TrimSpace(s[1:])
		eq := strings.IndexAny(s, "=;,")
		if eq < 0 || s[eq] != '=' {
			return Link{}, "", fmt.Errorf("parameter without a value at %q", s)
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimSpace(s[eq+1:])
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return Link{}, "", fmt.Errorf("unterminated quoted value of %s", name)
			}
			val, s = b.String(), s[i+1:]
		} else {
			n := strings.IndexAny(s, ";,")
			if n < 0 {
				n = len(s)
			}
			val, s = strings.TrimSpace(s[:n]), s[n:]
		}
		l.Params[name] = val
		s = strings.TrimSpace(s)
	}
	if s != "" && !strings.HasPrefix(s, ",") {
		return Link{}, "", fmt.Errorf("unexpected %q after the parameters", s)
	}
	return l, s, nil
}

// ICEServers are the rel="ice-server" links as a peer connection's ICE
// servers (RFC 9725 §4.6), each with its credentials.
func ICEServers(links []Link) []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, l := range links {
		if l.Params["rel"] != "ice-server" {
			continue
		}
		s := webrtc.ICEServer{URLs: []string{l.URL}}
		if u, ok := l.Params["username"]; ok {
			s.Username, s.Credential = u, l.Params["credential"]
		}
		out = append(out, s)
	}
	return out
}
