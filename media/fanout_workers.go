package media

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/lianmai/relay/bufpool"
)

// The relay's fan-out workers: one per P (GOMAXPROCS), long-lived, shared
// by every track of the relay, started when the first track grows past
// FanoutThreshold and stopped when the relay's UDP port closes. A track
// past the threshold hands each worker its shard of the subscribers for
// every packet (fanout.go); the worker writes that shard inside a write
// batch of its own (Batch.begin/end), so the shards' datagrams leave in
// sendmmsg calls made on several cores at once.
//
// Why workers and not a goroutine per track or per shard: a track has
// packets every 10 ms, so a goroutine per shard would sleep and wake per
// packet anyway, and one set of workers for the relay keeps the goroutine
// count independent of the number of big rooms.

// fanQueueLen is how many shards a worker holds queued: at 100 packets a
// second per track, 256 is more than two seconds of one track's packets,
// or every packet of 25 big tracks for 100 ms. A worker that far behind
// drops (DropFanoutBusy): the reader never waits for it.
const fanQueueLen = 256

// fanJob is one packet's shard: write pkt (parsed as f, read at now) to
// subs, then release pkt and mark the shard done on tk. The job holds one
// reference to pkt from push until the worker releases it.
type fanJob struct {
	t    *UpTrack
	subs []*DownTrack // the shard, from the track's current fanGroups (never changed in place)
	pkt  *bufpool.Packet
	f    rtpFields
	now  int64
	tk   *fanTicket // nil: this packet's fan-out delay is not measured
}

// fanWorker is one worker: a ring of jobs that the tracks' readers fill and
// the worker's goroutine empties in order, so a subscriber's packets are
// written in the order they were read (a subscriber is in one shard, so on
// one worker, for its whole life on the track).
type fanWorker struct {
	mu      sync.Mutex
	ring    [fanQueueLen]fanJob // guarded by mu; a slot is zeroed when taken
	head, n int                 // guarded by mu
	stopped bool                // guarded by mu: no job is taken after stop

	// wake has room for one token: a push leaves one if none is there, the
	// worker takes it before emptying the ring. Owned by the pool; never
	// closed.
	wake chan struct{}
}

// fanPool is a relay's workers. Its zero value has none: start makes them.
type fanPool struct {
	mu sync.Mutex
	// threshold is FanoutThreshold; tests lower it to shard a handful of
	// peers. Guarded by mu; read when a subscriber is added.
	threshold int
	// procs is how many workers start makes (GOMAXPROCS when 0). Guarded
	// by mu.
	procs   int
	workers []*fanWorker // guarded by mu; set once by start, never changed after
	// nextBase is the first worker of the next track to shard. Guarded by
	// mu.
	nextBase int
	closed   bool // guarded by mu: start makes none after close
	// queued counts the jobs pushed and not yet written or dropped: the
	// tests wait for it to reach 0 (one atomic add per shard, not per
	// subscriber).
	queued atomic.Int64
	stop   chan struct{}
	done   sync.WaitGroup
}

// SetFanoutThreshold sets how many subscribers each track's reader writes
// itself before the rest go to the workers: n > 0 that many, 0
// FanoutThreshold, -1 never (every track written by its reader alone).
// It applies to subscribers added afterwards.
func (g *Batch) SetFanoutThreshold(n int) {
	p := &g.fan
	p.mu.Lock()
	defer p.mu.Unlock()
	p.threshold = n
	if n < 0 {
		p.threshold = math.MaxInt
	}
}

// thresholdLocked is the subscriber count above which a track shards. The
// caller holds p.mu.
func (p *fanPool) thresholdLocked() int {
	if p.threshold > 0 {
		return p.threshold
	}
	return FanoutThreshold
}

// startLocked starts the workers unless they run, the pool closed, or the
// relay has one P (sharding then only adds hand-offs: the writes would run
// on the same core one after the other anyway). It returns how many
// workers there are. The caller holds p.mu.
func (p *fanPool) startLocked() int {
	if p.workers != nil || p.closed {
		return len(p.workers)
	}
	procs := p.procs
	if procs == 0 {
		procs = runtime.GOMAXPROCS(0)
	}
	if procs < 2 {
		return 0
	}
	p.stop = make(chan struct{})
	p.workers = make([]*fanWorker, procs)
	for i := range p.workers {
		w := &fanWorker{wake: make(chan struct{}, 1)}
		p.workers[i] = w
		p.done.Add(1)
		go w.loop(p)
	}
	return procs
}

// close stops the workers: what they hold queued is released, not written
// (the relay's port is closing), and a later push is refused.
func (p *fanPool) close() {
	p.mu.Lock()
	was := p.closed
	p.closed = true
	workers := p.workers
	p.mu.Unlock()
	if was || workers == nil {
		return
	}
	close(p.stop)
	p.done.Wait()
}

// push queues j on worker i; false (j's reference still the caller's) if
// the worker's ring is full or the pool stopped.
func (p *fanPool) push(i int, j *fanJob) bool {
	w := p.workers[i] // set before any track could shard, never changed
	w.mu.Lock()
	if w.stopped || w.n == fanQueueLen {
		w.mu.Unlock()
		return false
	}
	w.ring[(w.head+w.n)%fanQueueLen] = *j
	w.n++
	p.queued.Add(1)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // a token is there already: the worker will look again
	}
	return true
}

// loop runs the worker's jobs until stop, then releases what is left.
func (w *fanWorker) loop(p *fanPool) {
	defer p.done.Done()
	stop := p.stop
	var j fanJob // owned by this goroutine: the job being written
	for {
		select {
		case <-w.wake:
		case <-stop:
			w.drop(p)
			return
		}
		for w.take(&j) {
			j.t.writeShard(&j)
			j = fanJob{}
			p.queued.Add(-1)
			select {
			case <-stop: // the port is closing: what is queued can go nowhere
				w.drop(p)
				return
			default:
			}
		}
	}
}

// take moves the oldest job into j; false if there is none.
func (w *fanWorker) take(j *fanJob) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 {
		return false
	}
	*j = w.ring[w.head]
	w.ring[w.head] = fanJob{}
	w.head = (w.head + 1) % fanQueueLen
	w.n--
	return true
}

// drop marks the worker stopped and releases every queued job unwritten,
// counting each subscriber's packet as dropped.
func (w *fanWorker) drop(p *fanPool) {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	var j fanJob
	for w.take(&j) {
		j.t.m.dropN(DropFanoutBusy, len(j.subs))
		j.pkt.Release()
		j.tk.done(j.t.m)
		j = fanJob{}
		p.queued.Add(-1)
	}
}
