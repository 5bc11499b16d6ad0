package loadtest

import (
	"math"
	"testing"
	"time"
)

func TestImpairmentLoss(t *testing.T) {
	tests := []struct {
		name      string
		pct, mean float64
	}{
		{"none", 0, 1},
		{"independent 5%", 5, 1},
		{"bursts of 4 at 10%", 10, 4},
		{"bursts of 10 at 2%", 2, 10},
	}
	const frames = 400000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im := newImpairment(Scenario{LossPct: tt.pct, LossBurst: tt.mean}, 42)
			dropped, bursts, prev := 0, 0, false
			for i := 0; i < frames; i++ {
				d := im.drop()
				if d {
					dropped++
					if !prev {
						bursts++
					}
				}
				prev = d
			}
			got := float64(dropped) / frames * 100
			if math.Abs(got-tt.pct) > 0.1*tt.pct+0.05 {
				t.Fatalf("dropped %.3f%%, want %.1f%%", got, tt.pct)
			}
			if tt.pct == 0 {
				return
			}
			meanBurst := float64(dropped) / float64(bursts)
			want := tt.mean
			if tt.mean == 1 {
				want = 1 / (1 - tt.pct/100) // independent losses still cluster by chance
			}
			if math.Abs(meanBurst-want) > 0.1*want {
				t.Fatalf("mean burst %.2f frames, want %.2f", meanBurst, want)
			}
		})
	}
}

func TestLossAt(t *testing.T) {
	count := func(im *impairment) (n int) {
		for range 10000 {
			if im.drop() {
				n++
			}
		}
		return n
	}
	tests := []struct {
		at             string
		pacer, network bool // which side drops
	}{
		{LossNetwork, false, true},
		{LossSender, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.at, func(t *testing.T) {
			sc := Scenario{LossPct: 5, LossBurst: 1, LossAt: tt.at, Jitter: Duration(20 * time.Millisecond)}
			pacer, up := pacerImpairment(sc, 1), uplinkImpairment(sc, 1)
			if got := count(pacer) > 0; got != tt.pacer {
				t.Errorf("pacer drops: %v, want %v", got, tt.pacer)
			}
			if got := count(up) > 0; got != tt.network {
				t.Errorf("uplink drops: %v, want %v", got, tt.network)
			}
			if pacer.jitter == 0 || up.jitter != 0 {
				t.Errorf("jitter belongs to the pacer: pacer %d, uplink %d", pacer.jitter, up.jitter)
			}
		})
	}
}

func TestImpairmentJitter(t *testing.T) {
	im := newImpairment(Scenario{Jitter: Duration(30 * time.Millisecond)}, 1)
	var lo, hi int64 = math.MaxInt64, 0
	for i := 0; i < 10000; i++ {
		d := im.delay()
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 0 || hi >= int64(30*time.Millisecond) || hi < int64(25*time.Millisecond) {
		t.Fatalf("jitter range %v..%v, want within [0, 30ms)", time.Duration(lo), time.Duration(hi))
	}
	if d := newImpairment(Scenario{}, 1).delay(); d != 0 {
		t.Fatalf("no jitter configured, got %v", d)
	}
}
