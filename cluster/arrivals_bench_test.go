package cluster_test

import (
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
)

// arrivals records when each payload reached one client, for the hop
// benchmarks: the same packet's arrival at two clients, matched by its
// payload, gives the latency one path adds over the other.
type arrivals struct {
	mu    sync.Mutex
	at    map[string]time.Time // nil until start
	dup   map[string]bool      // payloads seen twice (silence frames can repeat): not matched
	first chan time.Time       // the first packet's time; buffered 1
}

// record reads c's first track in the background and records each
// non-empty payload's arrival.
func record(c *client.Client) *arrivals {
	a := &arrivals{first: make(chan time.Time, 1)}
	go func() {
		rt := <-c.Tracks()
		if rt == nil {
			return
		}
		for {
			pkt, _, err := rt.Track.ReadRTP()
			if err != nil {
				return
			}
			now := time.Now()
			if len(pkt.Payload) == 0 {
				continue
			}
			select {
			case a.first <- now:
			default:
			}
			k := string(pkt.Payload)
			a.mu.Lock()
			if a.at != nil {
				if _, seen := a.at[k]; seen {
					a.dup[k] = true
				}
				a.at[k] = now
			}
			a.mu.Unlock()
		}
	}()
	return a
}

// start forgets what came before and records from now on (about n
// packets).
func (a *arrivals) start(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.at, a.dup = make(map[string]time.Time, n), make(map[string]bool)
}

// hop runs b's N ops of 10 ms packets and reports the percentiles of
// each packet's arrival at other less its arrival at direct (what names
// the two for the failure message).
func hop(b *testing.B, direct, other *arrivals, what string) {
	direct.start(b.N)
	other.start(b.N)
	b.ResetTimer()
	time.Sleep(time.Duration(b.N) * 10 * time.Millisecond)
	b.StopTimer()
	time.Sleep(100 * time.Millisecond) // the last packets arrive
	direct.mu.Lock()
	other.mu.Lock()
	var lat []time.Duration
	for k, t0 := range direct.at {
		if t1, ok := other.at[k]; ok && !direct.dup[k] && !other.dup[k] {
			lat = append(lat, t1.Sub(t0))
		}
	}
	other.mu.Unlock()
	direct.mu.Unlock()
	if len(lat) < b.N/2 {
		b.Fatalf("only %d of ~%d packets reached %s", len(lat), b.N, what)
	}
	percentiles(b, lat)
}
