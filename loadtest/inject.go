package loadtest

import (
	"math/rand/v2"
	"time"
)

// impairment decides, frame by frame, what the sending side does to a
// publisher's stream: drop it (loss, in bursts) and hold it back (jitter).
// Each publisher has two: its pacer's (jitter, and loss with loss_at
// "sender"), used only by the pacer goroutine, and its uplink's (loss with
// loss_at "network"), used under the uplink's lock.
type impairment struct {
	rng *rand.Rand
	// Loss is a two-state (Gilbert) chain: in the bad state every frame is
	// dropped. pGB and pBG are the per-frame transition probabilities; the
	// share of frames dropped is pGB / (pGB + pBG) = loss_pct and the mean
	// burst is 1/pBG = loss_burst frames.
	pGB, pBG float64
	bad      bool
	jitter   int64 // ns; each frame waits uniform [0, jitter)
}

func newImpairment(s Scenario, seed uint64) *impairment {
	im := &impairment{
		rng:    rand.New(rand.NewPCG(seed, seed^0x5bd1e995)),
		jitter: int64(s.Jitter.D() / time.Nanosecond),
	}
	if p := s.LossPct / 100; p > 0 {
		b := max(s.LossBurst, 1)
		im.pBG = 1 / b
		im.pGB = p / (b * (1 - p))
		if b == 1 {
			// Independent losses: the chain degenerates to a coin.
			im.pGB, im.pBG = p, 1-p
		}
	}
	return im
}

// pacerImpairment is what a publisher's pacer does to its frames before
// pion sees them: jitter always, loss only with loss_at "sender".
func pacerImpairment(s Scenario, seed uint64) *impairment {
	if s.LossAt != LossSender {
		s.LossPct = 0
	}
	return newImpairment(s, seed)
}

// uplinkImpairment is what the publisher's uplink (its SendInterceptor)
// does to packets after pion's NACK responder has kept them: loss only
// with loss_at "network", never jitter (it is the pacer's, in order).
func uplinkImpairment(s Scenario, seed uint64) *impairment {
	if s.LossAt != LossNetwork {
		s.LossPct = 0
	}
	s.Jitter = 0
	return newImpairment(s, seed^0x9e3779b97f4a7c15)
}

// drop says whether the next frame is lost.
func (im *impairment) drop() bool {
	if im.pGB == 0 {
		return false
	}
	if im.bad {
		im.bad = im.rng.Float64() >= im.pBG
	} else {
		im.bad = im.rng.Float64() < im.pGB
	}
	return im.bad
}

// delay returns how long the next frame is held back, in ns.
func (im *impairment) delay() int64 {
	if im.jitter <= 0 {
		return 0
	}
	return im.rng.Int64N(im.jitter)
}
