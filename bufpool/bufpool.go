// Package bufpool provides fixed-size, reference-counted packet buffers
// recycled through a sync.Pool, so that one packet read from a publisher can
// be fanned out to many subscribers without a copy or an allocation.
//
// Ownership: Get returns a packet holding one reference, owned by the
// caller. Whoever hands the packet to another goroutine first calls Retain
// for it; every holder calls Release exactly once when done. The last
// Release returns the buffer to the pool. After fan-out the bytes are
// immutable: holders read them and never write.
package bufpool

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Size is the capacity of every buffer: an Ethernet MTU, more than any RTP
// packet that crosses the relay.
const Size = 1500

// Packet is one pooled buffer and what the reader learned about it.
type Packet struct {
	refs atomic.Int32
	n    int
	// ReadAt is when the packet was read, in nanoseconds of the process's
	// monotonic clock as the reader measures it; used for the forwarding
	// latency. Zero when unknown.
	ReadAt int64
	buf    [Size]byte
}

var pool = sync.Pool{New: func() any { return new(Packet) }}

// doubleReleases counts releases of a packet that had no reference left,
// outside tests (where they panic).
var doubleReleases atomic.Uint64

// Get returns an empty packet holding one reference.
func Get() *Packet {
	p := pool.Get().(*Packet)
	p.refs.Store(1)
	return p
}

// Buf is the whole buffer, to read a packet into. Follow with SetLen.
func (p *Packet) Buf() []byte { return p.buf[:] }

// SetLen records how many bytes of Buf hold the packet.
func (p *Packet) SetLen(n int) { p.n = n }

// Bytes is the packet.
func (p *Packet) Bytes() []byte { return p.buf[:p.n] }

// Retain adds a reference, for another holder.
func (p *Packet) Retain() { p.refs.Add(1) }

// Release drops a reference; the last one returns the packet to the pool.
// Releasing a packet with no reference left is a bug: it panics in tests,
// and elsewhere is counted (DoubleReleases) and otherwise ignored.
func (p *Packet) Release() {
	switch r := p.refs.Add(-1); {
	case r > 0:
	case r == 0:
		p.n = 0
		p.ReadAt = 0
		pool.Put(p)
	default:
		if testing.Testing() {
			panic("bufpool: Release of a packet with no reference left")
		}
		doubleReleases.Add(1)
	}
}

// DoubleReleases is how many times a packet was released once too often
// outside tests.
func DoubleReleases() uint64 { return doubleReleases.Load() }
