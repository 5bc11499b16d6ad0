package relaytest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// TURNClient is a pion TURN client over UDP to the relay's TURN server at
// turnURL (a turn: URL with transport=udp), listening; it is closed at
// cleanup.
func TURNClient(t *testing.T, turnURL, user, pass string) *turn.Client {
	t.Helper()
	u, err := stun.ParseURI(turnURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	addr := net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
	tc, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: addr, STUNServerAddr: addr, Username: user, Password: pass,
		Realm: "lianmai", Conn: conn, RTO: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	if err := tc.Listen(); err != nil {
		t.Fatal(err)
	}
	return tc
}
