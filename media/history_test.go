package media

import (
	"fmt"
	"testing"

	"github.com/lianmai/relay/bufpool"
)

// assertFreed checks that p has no reference left, by releasing it once
// more and expecting bufpool's double-release panic (tests only). A packet
// that still had a reference (a leak) does not panic. Call it only for a
// packet nobody else can Get meanwhile: the extra release touches a packet
// already back in the pool (harmless: Get resets the count).
func assertFreed(t testing.TB, p *bufpool.Packet, what string) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: still referenced (leak): one more Release did not panic", what)
		}
	}()
	p.Release()
}

// seqPacket is a pooled packet whose first bytes say which it is.
func seqPacket(seq uint16) *bufpool.Packet {
	p := bufpool.Get()
	b := p.Buf()
	b[0], b[1], b[2], b[3] = 0x80, 111, byte(seq>>8), byte(seq)
	p.SetLen(12)
	return p
}

func pktSeq(p *bufpool.Packet) uint16 { b := p.Bytes(); return uint16(b[2])<<8 | uint16(b[3]) }

func TestHistory(t *testing.T) {
	tests := []struct {
		name string
		put  []uint16 // in order
		get  uint16
		want bool
	}{
		{name: "latest", put: []uint16{1, 2, 3}, get: 3, want: true},
		{name: "oldest kept", put: seqRange(100, historySize), get: 100, want: true},
		{name: "evicted after historySize newer", put: seqRange(100, historySize+1), get: 100, want: false},
		{name: "newest after eviction", put: seqRange(100, historySize+1), get: 100 + historySize, want: true},
		{name: "same slot other seq", put: []uint16{5}, get: 5 + historySize, want: false},
		{name: "same slot older seq", put: []uint16{5 + historySize}, get: 5, want: false},
		{name: "never put", put: []uint16{1}, get: 2, want: false},
		{name: "empty", get: 0, want: false},
		{name: "across wrap", put: seqRange(0xfff0, 0x20), get: 0xffff, want: true},
		{name: "after wrap", put: seqRange(0xfff0, 0x20), get: 0x000f, want: true},
		{name: "put twice", put: []uint16{7, 7}, get: 7, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h history
			// The test keeps its own reference to every packet until the
			// end, so that none goes back to the pool and each can be
			// checked for exactly one release by the history.
			var all []*bufpool.Packet
			for _, s := range tt.put {
				p := seqPacket(s)
				h.put(s, p)
				all = append(all, p)
			}
			got := h.get(tt.get)
			if (got != nil) != tt.want {
				t.Fatalf("get(%d) = %v, want found %v", tt.get, got, tt.want)
			}
			if got != nil {
				if s := pktSeq(got); s != tt.get {
					t.Errorf("get(%d) returned the packet for %d", tt.get, s)
				}
				got.Release() // the caller's reference
			}
			h.clear()
			if p := h.get(tt.get); p != nil {
				t.Errorf("get(%d) after clear = packet %d, want nil", tt.get, pktSeq(p))
			}
			for _, p := range all {
				p.Release() // ours: the last one if the history released its own
			}
			for i, p := range all {
				assertFreed(t, p, fmt.Sprintf("packet %d (seq %d)", i, tt.put[i]))
			}
		})
	}
}

func seqRange(from uint16, n int) []uint16 {
	s := make([]uint16, n)
	for i := range s {
		s[i] = from + uint16(i)
	}
	return s
}

// TestHistoryEvictionReleases checks that put releases the packet it
// evicts at once, not at clear.
func TestHistoryEvictionReleases(t *testing.T) {
	var h history
	old := seqPacket(1)
	h.put(1, old)
	newer := seqPacket(1 + historySize)
	h.put(1+historySize, newer)
	old.Release() // ours; the history's went at eviction
	assertFreed(t, old, "evicted packet")
	newer.Release()
	h.clear()
	assertFreed(t, newer, "packet released by clear")
}
