package mix

import "math"

// The soft limiter between the sum and the encoder. Summing several loud
// voices easily exceeds 16 bits; a plain int16 conversion would wrap
// around (a full-scale positive peak becomes a negative one) and a clamp
// would clip hard. The limiter has two stages, without look-ahead beyond
// the 10 ms frame it is given:
//
//  1. A gain that follows the frame's peak: unity while the peak stays
//     under limitThreshold; above it, the gain falls at once to bring the
//     peak to the threshold (ramped over attackSamples so the step does not
//     click), holds for holdFrames, and comes back up with a release time
//     constant of releaseTime.
//  2. A smooth knee on every sample: identity up to kneeLevel, then a
//     rational curve with slope 1 at the knee that tends to ceilingLevel
//     and never reaches it. It only acts on the few samples the gain ramp
//     lets through; nothing reaches full scale, so nothing clips.
//
// Below the threshold the limiter is exact unity (the samples are copied),
// so quiet rooms pass through untouched.
const (
	limitThreshold = 0.85 // of full scale, -1.4 dBFS: peak the gain aims at
	kneeLevel      = 0.90 // the smooth knee starts here
	ceilingLevel   = 0.97 // and approaches this, -0.26 dBFS, from below
	attackSamples  = 48   // 1 ms gain ramp when the gain falls
	holdFrames     = 10   // 100 ms at the lowered gain before it recovers, so steady loud speech does not pump
	releaseTime    = 0.15 // s, time constant of the gain's recovery
)

// releaseStep is the fraction of the way back to unity the gain moves per
// frame.
var releaseStep = float32(1 - math.Exp(-0.010/releaseTime))

type limiter struct {
	gain float32 // applied at the end of the last frame; 1 when idle
	hold int     // frames left before the gain may rise
}

func newLimiter() limiter { return limiter{gain: 1} }

// process turns the sum in into out (same length), and reports whether the
// gain was below unity anywhere in the frame.
func (l *limiter) process(in []int32, out []int16) bool {
	out = out[:len(in)]
	var peak int32
	for _, v := range in {
		peak = max(peak, v, -v)
	}
	const full = 32768
	p := float32(peak) / full
	if p <= limitThreshold && l.gain == 1 {
		for i, v := range in {
			out[i] = int16(v) // |v| < 0.85 * 32768: fits
		}
		return false
	}
	target := float32(1)
	if p > limitThreshold {
		target = limitThreshold / p
	}
	g0, g1, ramp := l.gain, target, attackSamples
	switch {
	case target <= g0:
		l.hold = holdFrames
	case l.hold > 0:
		l.hold--
		g1 = g0
	default:
		g1 = g0 + (target-g0)*releaseStep
		if 1-g1 < 1e-3 && target == 1 {
			g1 = 1
		}
		ramp = len(in)
	}
	step := (g1 - g0) / float32(ramp)
	g := g0
	for i, v := range in {
		if i < ramp {
			g += step
		} else {
			g = g1
		}
		out[i] = toInt16(softKnee(float32(v) / full * g))
	}
	l.gain = g1
	return true
}

// softKnee is the identity below kneeLevel and bends towards ceilingLevel
// above it, with a continuous slope.
func softKnee(y float32) float32 {
	a := y
	if a < 0 {
		a = -a
	}
	if a <= kneeLevel {
		return y
	}
	const room = ceilingLevel - kneeLevel
	over := a - kneeLevel
	a = kneeLevel + room*over/(over+room)
	if y < 0 {
		return -a
	}
	return a
}

// toInt16 rounds y (|y| < 1) to a sample.
func toInt16(y float32) int16 {
	s := y * 32767
	if s >= 0 {
		return int16(s + 0.5)
	}
	return int16(s - 0.5)
}
