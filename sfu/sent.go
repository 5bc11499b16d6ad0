package sfu

import (
	"slices"
	"sync"

	"github.com/lianmai/relay/media"
)

// sentCount adds up the packets a participant's down tracks have written,
// those removed since included, for figures read from outside the room
// (a cluster link's packets out: cluster/metrics.go). Its lock is a leaf:
// PacketsSent may be called with a room's lock held.
type sentCount struct {
	mu      sync.Mutex
	live    []*media.DownTrack
	retired uint64 // the removed down tracks' final counts
}

func (c *sentCount) add(d *media.DownTrack) {
	c.mu.Lock()
	c.live = append(c.live, d)
	c.mu.Unlock()
}

// retire moves d's count from the live tracks to the retired total, in one
// step so that the sum never goes back.
func (c *sentCount) retire(d *media.DownTrack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := slices.Index(c.live, d); i >= 0 {
		c.live = slices.Delete(c.live, i, i+1)
		c.retired += uint64(d.PacketsSent())
	}
}

func (c *sentCount) total() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.retired
	for _, d := range c.live {
		n += uint64(d.PacketsSent())
	}
	return n
}

// PacketsSent is the RTP packets the relay has written to p on its sub
// connection (offered sub only: an answered sub's slots are not counted),
// retransmissions included.
func (p *Participant) PacketsSent() uint64 { return p.sent.total() }
