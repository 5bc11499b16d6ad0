package whip

import (
	"net/http"
	"strings"

	"github.com/lianmai/relay/protocol"
)

// addICELinks adds one Link header per ICE server URL (RFC 9725 §4.6):
// the TURN servers with the session's participant's credentials, the
// same ones a WebSocket client gets in joined's ice_servers (and from the
// same source, signaling.Config.ICEServers). Nothing when TURN is off.
//
// Only the POST's 201 carries them, not the OPTIONS answer: the
// credentials name a participant, which exists only once the POST has
// been admitted (token, limits); RFC 9725 makes the OPTIONS way optional,
// discourages clients from relying on it, and asks servers not to answer
// a CORS preflight with it.
func addICELinks(h http.Header, servers []protocol.ICEServer) {
	for _, s := range servers {
		for _, u := range s.URLs {
			h.Add("Link", iceLink(u, s.Username, s.Credential))
		}
	}
}

// iceLink is one Link header value: <url>; rel="ice-server", with the
// long-term credential parameters when the server has a username.
func iceLink(url, username, credential string) string {
	v := "<" + url + `>; rel="ice-server"`
	if username != "" {
		v += `; username=` + quote(username) + `; credential=` + quote(credential) + `; credential-type="password"`
	}
	return v
}

// quote is s as an RFC 9110 quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
