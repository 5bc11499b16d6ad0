package relaytest

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/pion/rtp"
)

// SendOpus publishes src's frames from pub in 10 ms frames paced in real
// time, until ctx ends (nil) or a write fails. each, if not nil, sees
// every frame's payload and packet before the packet is written (to keep
// what was sent, or to add header extensions); its error stops sending.
func SendOpus(ctx context.Context, pub *client.Publisher, src *opusgen.Source, each func(payload []byte, pkt *rtp.Packet) error) error {
	pk := opusgen.NewPacketizer(111, rand.Uint32())
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		frame, err := src.NextFrame()
		if err != nil {
			return err
		}
		pkt := pk.Packet(frame)
		if each != nil {
			if err := each(frame, pkt); err != nil {
				return err
			}
		}
		if err := pub.WriteRTP(pkt); err != nil {
			return err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil
		}
	}
}
