package media

import (
	"sync/atomic"

	"github.com/lianmai/relay/bufpool"
)

// Parallel fan-out for big rooms. A track's reader writes every copy of a
// packet itself (UpTrack.writeAll) while the track has at most
// FanoutThreshold subscribers. Past it, each new subscriber goes to
// whichever of the reader and the track's fan-out workers
// (fanout_workers.go) has fewest: for every packet the reader queues each
// worker's shard, writes its own subscribers, and goes back to reading;
// the workers write their shards on the other cores.
//
// What stays as it was: a subscriber is written by one goroutine for its
// whole life on the track (the reader, or its shard's worker, whose queue
// is in order), so its packets leave in order and its header and munger
// state keep a single writer; the packet goes back to the pool only when
// every shard has released its reference; mute and the tap act in the
// reader before the fan-out; NACKs are served by the down track's RTCP
// reader from the same history. No lock is held across a write: a worker's
// queue lock covers the copy of one job in or out.

// FanoutThreshold is how many subscribers a track's reader writes itself
// before it shares them with the relay's fan-out workers (with
// GOMAXPROCS ≥ 2; -fanout-threshold sets it). Below it a track's copies
// take at most ~2.5 ms of one core (~10 µs a copy through pion), a
// quarter of a 10 ms frame, and a worker woken for half of them starts
// ~0.6 ms late on the VM this was measured on (BenchmarkWakeLatency,
// docs/performance.md "Parallel fan-out"): little to gain for a wake-up
// per packet. Past it
// the saving grows with the room and the hand-off's cost does not.
const FanoutThreshold = 256

// fanState is a track's sharding, guarded by the track's mu except where
// noted.
type fanState struct {
	// groups is who writes which subscriber, replaced whole under mu (as
	// UpTrack.subs is) and loaded by the reader once per packet; nil while
	// the track has never sharded.
	groups atomic.Pointer[fanGroups]
	// shardOf: the worker of each subscriber added past the threshold.
	// Guarded by mu.
	shardOf map[*DownTrack]int
	// tickets measure each packet's fan-out delay across its shards: the
	// reader takes the next one per sharded packet (owned by the reader:
	// next), the last shard to finish observes the delay.
	tickets [fanTickets]fanTicket
	next    uint32
	// base is the first of the track's workers, set when it first
	// shards. Guarded by mu.
	base int
}

// fanTickets is how many sharded packets of one track may be in flight
// and still measured: as many as a worker queues (2.56 s of a track's
// packets). A packet whose ticket is still in use is forwarded all the
// same, only not measured; a track that far behind is dropping
// (fanout_busy) anyway.
const fanTickets = fanQueueLen

// fanGroups is one snapshot of a track's fan-out: the reader's own
// subscribers and one shard per worker. Never changed once stored.
type fanGroups struct {
	inline  []*DownTrack
	shards  [][]*DownTrack // by worker; empty slices for idle workers
	sharded int            // how many of shards are not empty
}

// fanTicket follows one packet through its shards.
type fanTicket struct {
	pending atomic.Int32 // shards (the reader's own included) not yet written
	readAt  int64        // written by the reader before the shards are queued
}

// done marks one shard of t's packet written; the last one observes the
// packet's fan-out delay. A nil ticket does nothing.
func (tk *fanTicket) done(m *Metrics) {
	if tk == nil {
		return
	}
	// Read before the decrement: once pending is 0 the reader may reuse
	// the ticket.
	at := tk.readAt
	if tk.pending.Add(-1) == 0 {
		m.FanoutDelay.Observe(float64(Now()-at) / 1e9)
	}
}

// ticket is the next free ticket for a packet read at readAt with shards
// parts, or nil if that slot is still in use. Called by the reader only.
func (s *fanState) ticket(readAt int64, parts int) *fanTicket {
	tk := &s.tickets[s.next%fanTickets]
	s.next++
	if tk.pending.Load() != 0 {
		return nil
	}
	tk.readAt = readAt
	tk.pending.Store(int32(parts))
	return tk
}

// placeLocked decides who writes d, just added to the track (subs is the
// new subscriber list with d in it), and stores the new groups if the
// track shards. Up to the threshold the reader writes every subscriber;
// past it each new one goes to whichever of the reader and the track's
// workers has fewest, so that a big room ends up in equal parts. A track
// uses all workers but one (with the reader that makes one writer per P),
// starting from a worker of its own, so that two big tracks lean on
// different workers. The caller holds t.mu.
func (t *UpTrack) placeLocked(d *DownTrack, subs []*DownTrack) {
	if t.batch == nil {
		return // no relay port (tests, or a relay without ours): inline
	}
	p := &t.batch.fan
	s := &t.fan
	inline := len(subs) - 1 - len(s.shardOf)
	p.mu.Lock()
	workers := 0
	if inline >= p.thresholdLocked() {
		workers = p.startLocked()
		if s.shardOf == nil && workers > 0 {
			s.base = p.nextBase % workers
			p.nextBase++
		}
	}
	p.mu.Unlock()
	if workers > 0 {
		t.shardLocked(d, inline, workers)
	}
	if s.shardOf != nil {
		t.regroupLocked(subs) // d is in a shard, or the reader's own group
	}
}

// shardLocked puts d on the least loaded of the track's workers if it has
// fewer than the reader's inline subscribers. The caller holds t.mu.
func (t *UpTrack) shardLocked(d *DownTrack, inline, workers int) {
	s := &t.fan
	load := make([]int, workers)
	for _, w := range s.shardOf {
		load[w]++
	}
	best, least := -1, inline // the reader first: no hand-off on a tie
	for i := range max(workers-1, 1) {
		w := (s.base + i) % workers
		if load[w] < least {
			best, least = w, load[w]
		}
	}
	if best < 0 {
		return
	}
	if s.shardOf == nil {
		s.shardOf = make(map[*DownTrack]int)
	}
	s.shardOf[d] = best
}

// forgetLocked drops d from the shards (it left the track) and regroups
// what is left. The caller holds t.mu.
func (t *UpTrack) forgetLocked(d *DownTrack, subs []*DownTrack) {
	if t.fan.shardOf == nil {
		return
	}
	delete(t.fan.shardOf, d)
	t.regroupLocked(subs)
}

// regroupLocked stores the groups for subs from shardOf. The caller holds
// t.mu.
func (t *UpTrack) regroupLocked(subs []*DownTrack) {
	s := &t.fan
	g := &fanGroups{}
	workers := 0
	for _, w := range s.shardOf {
		workers = max(workers, w+1)
	}
	g.shards = make([][]*DownTrack, workers)
	for _, d := range subs {
		if w, ok := s.shardOf[d]; ok {
			if len(g.shards[w]) == 0 {
				g.sharded++
			}
			g.shards[w] = append(g.shards[w], d)
		} else {
			g.inline = append(g.inline, d)
		}
	}
	s.groups.Store(g)
}

// fanOut writes pkt (parsed as f, read at now) to every subscriber: its
// shards queued on the workers first, so that they write while the reader
// writes its own. It counts what the reader wrote; the workers count
// theirs. The caller keeps its reference to pkt; each queued shard holds
// one of its own.
func (t *UpTrack) fanOut(pkt *bufpool.Packet, f *rtpFields, now int64) {
	m := t.m
	g := t.fan.groups.Load()
	if g == nil || g.sharded == 0 {
		subs := *t.subs.Load()
		if g != nil {
			subs = g.inline
		}
		out, bytes := t.writeAll(subs, pkt, f, now)
		m.countOut(out, bytes)
		if len(subs) > 0 {
			m.FanoutDelay.Observe(float64(Now()-now) / 1e9)
		}
		return
	}
	tk := t.fan.ticket(now, 1+g.sharded)
	pool := &t.batch.fan
	j := fanJob{t: t, pkt: pkt, f: *f, now: now, tk: tk}
	for w, subs := range g.shards {
		if len(subs) == 0 {
			continue
		}
		j.subs = subs
		pkt.Retain()
		if !pool.push(w, &j) {
			pkt.Release()
			m.dropN(DropFanoutBusy, len(subs))
			tk.done(m) // never the last: the reader's own part is pending
		}
	}
	out, bytes := t.writeAll(g.inline, pkt, f, now)
	m.countOut(out, bytes)
	tk.done(m)
}

// writeShard is a worker writing its shard of one packet: inside a write
// batch of its own (writeAll), then it gives back the job's reference.
func (t *UpTrack) writeShard(j *fanJob) {
	out, bytes := t.writeAll(j.subs, j.pkt, &j.f, j.now)
	t.m.countOut(out, bytes)
	j.pkt.Release()
	j.tk.done(t.m)
}
