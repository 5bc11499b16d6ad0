package relaytest

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/lianmai/relay/bufpool"
	"github.com/lianmai/relay/server"
	"github.com/lianmai/relay/sfu"
)

// PassMixes is a TEST DOUBLE for the audience mixer, made to test the
// room layer's handling of the mix (when a mixer starts and stops, which
// tracks are its inputs, mutes, what mix listeners receive and are told),
// not the mix itself: it decodes, mixes and encodes nothing. Each of its
// mixers (PassMixer) forwards the packets of ONE input, the newest one
// not muted, re-stamped as a stream of its own (own SSRC, sequence
// numbers +1 and timestamps +480 per packet), so that a test can tell
// from the payloads which publisher the mix listener hears. The real
// mixer (package mix) is tested on its own and end to end with decoding.
//
// PassMixes.New is a server.NewMixerFunc; Options.PassMix installs it.
type PassMixes struct {
	mu     sync.Mutex
	mixers []*PassMixer // every mixer started, in order
}

var _ server.NewMixerFunc = (*PassMixes)(nil).New

// New starts a pass-through mixer; cfg is ignored.
func (ps *PassMixes) New(_ server.MixConfig, out func(pkt *bufpool.Packet, n int)) (sfu.Mixer, error) {
	m := &PassMixer{out: out, ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), ts: rand.Uint32()}
	ps.mu.Lock()
	ps.mixers = append(ps.mixers, m)
	ps.mu.Unlock()
	return m, nil
}

// Started is every mixer started so far, in order.
func (ps *PassMixes) Started() []*PassMixer {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return slices.Clone(ps.mixers)
}

// Running is how many started mixers are not closed.
func (ps *PassMixes) Running() int {
	n := 0
	for _, m := range ps.Started() {
		if !m.State().Closed {
			n++
		}
	}
	return n
}

// PassMixer is one room's pass-through test double (see PassMixes).
type PassMixer struct {
	mu     sync.Mutex // held across out, so that out's calls never overlap and none follows Close
	out    func(pkt *bufpool.Packet, n int)
	closed bool
	inputs []*passInput // in the order added; removed ones taken out
	ssrc   uint32
	seq    uint16
	ts     uint32
	sent   int
}

// PassMixState is a PassMixer as a test checks it.
type PassMixState struct {
	Closed bool
	Inputs int // inputs added and not removed
	Muted  int // of those, how many are muted
	Sent   int // packets handed to out
}

// State reports the mixer's inputs and whether it is closed.
func (m *PassMixer) State() PassMixState {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := PassMixState{Closed: m.closed, Inputs: len(m.inputs), Sent: m.sent}
	for _, in := range m.inputs {
		if in.muted {
			st.Muted++
		}
	}
	return st
}

// AddInput implements sfu.Mixer.
func (m *PassMixer) AddInput() sfu.MixInput {
	in := &passInput{m: m}
	m.mu.Lock()
	m.inputs = append(m.inputs, in)
	m.mu.Unlock()
	return in
}

// RemoveInput implements sfu.Mixer.
func (m *PassMixer) RemoveInput(in sfu.MixInput) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inputs = slices.DeleteFunc(m.inputs, func(x *passInput) bool { return x == in })
}

// Close implements sfu.Mixer: out is not called after it returns.
func (m *PassMixer) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
}

// heardLocked is the input whose packets go out: the newest not muted.
func (m *PassMixer) heardLocked() *passInput {
	for i := len(m.inputs) - 1; i >= 0; i-- {
		if !m.inputs[i].muted {
			return m.inputs[i]
		}
	}
	return nil
}

// passInput is one track's input of a PassMixer.
type passInput struct {
	m     *PassMixer
	muted bool // guarded by m.mu
}

// SetMuted implements sfu.MixInput.
func (in *passInput) SetMuted(muted bool) {
	in.m.mu.Lock()
	defer in.m.mu.Unlock()
	in.muted = muted
}

// WriteRTP implements media.Tap: the heard input's packet goes out at
// once, with the mixer's own header.
func (in *passInput) WriteRTP(_ uint16, _ uint32, payload []byte) {
	m := in.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || len(payload) == 0 || m.heardLocked() != in {
		return
	}
	pkt := bufpool.Get()
	b := pkt.Buf()
	b[0], b[1] = 0x80, 111 // version 2; payload type 111 (Opus), as the real mixer
	binary.BigEndian.PutUint16(b[2:], m.seq)
	binary.BigEndian.PutUint32(b[4:], m.ts)
	binary.BigEndian.PutUint32(b[8:], m.ssrc)
	n := 12 + copy(b[12:], payload)
	m.seq++
	m.ts += 480
	m.sent++
	m.out(pkt, n)
}
