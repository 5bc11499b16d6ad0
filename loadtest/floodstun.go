package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/pion/stun/v4"
)

// FloodSTUN is what the STUN part of a flood sent: Binding requests with
// made-up credentials, as a scanner or an attacker without a session
// sends them to a WebRTC server's media port.
type FloodSTUN struct {
	To     string  `json:"to,omitempty"` // the relay's UDP address
	Rate   float64 `json:"rate"`         // requests per second asked for
	Sent   int64   `json:"sent"`
	Errors int64   `json:"errors"` // sends the local kernel refused
}

// stunFlood sends Binding requests with a random USERNAME and a
// MESSAGE-INTEGRITY under a random key (so that the relay must look the
// username up, find no session and drop the packet) from the flood's
// address to the relay's UDP port at rate per second until stop ends.
type stunFlood struct {
	sent, errs atomic.Int64
}

func (s *stunFlood) run(stop context.Context, from, to string, rate float64) error {
	raddr, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		return fmt.Errorf("-stun-to %q: want the relay's UDP host:port: %w", to, err)
	}
	laddr := &net.UDPAddr{IP: net.ParseIP(from)}
	conn, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		return fmt.Errorf("cannot send UDP from %s to %s: %w", from, to, err)
	}
	defer conn.Close()
	key := make([]byte, 16)
	var user [8]byte
	pace(stop, rate, func() bool {
		_, _ = rand.Read(user[:])
		_, _ = rand.Read(key)
		name := hex.EncodeToString(user[:4]) + ":" + hex.EncodeToString(user[4:])
		m, err := stun.Build(stun.TransactionID, stun.BindingRequest,
			stun.NewUsername(name), stun.NewShortTermIntegrity(string(key)), stun.Fingerprint)
		if err != nil {
			s.errs.Add(1)
			return true
		}
		if _, err := conn.Write(m.Raw); err != nil {
			s.errs.Add(1)
		} else {
			s.sent.Add(1)
		}
		return true
	})
	return nil
}
