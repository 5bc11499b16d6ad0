package bufpool

import (
	"sync"
	"testing"
)

func TestRefcount(t *testing.T) {
	tests := []struct {
		name    string
		retains int
	}{
		{"single owner", 0},
		{"fan-out to one", 1},
		{"fan-out to fifty", 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Get()
			copy(p.Buf(), "hello")
			p.SetLen(5)
			for i := 0; i < tt.retains; i++ {
				p.Retain()
			}
			var wg sync.WaitGroup
			for i := 0; i < tt.retains; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if string(p.Bytes()) != "hello" {
						t.Errorf("holder saw %q", p.Bytes())
					}
					p.Release()
				}()
			}
			wg.Wait()
			if got := p.refs.Load(); got != 1 {
				t.Fatalf("refs after holders released = %d, want 1", got)
			}
			p.Release()
			if got := p.refs.Load(); got != 0 {
				t.Fatalf("refs after last release = %d, want 0", got)
			}
		})
	}
}

func TestReleaseResets(t *testing.T) {
	p := Get()
	p.SetLen(100)
	p.ReadAt = 42
	p.Release()
	if p.n != 0 || p.ReadAt != 0 {
		t.Fatalf("released packet not reset: n=%d ReadAt=%d", p.n, p.ReadAt)
	}
}

func TestDoubleReleasePanicsInTests(t *testing.T) {
	p := Get()
	p.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("second Release did not panic")
		}
		p.refs.Store(0) // leave it out of the pool: it may have been reused
	}()
	p.Release()
}

func TestGetReleaseAllocs(t *testing.T) {
	for i := 0; i < 10; i++ { // warm the pool
		Get().Release()
	}
	allocs := testing.AllocsPerRun(1000, func() {
		p := Get()
		p.Retain()
		p.Release()
		p.Release()
	})
	if allocs != 0 {
		t.Fatalf("Get/Retain/Release allocates %.1f times per packet, want 0", allocs)
	}
}

func BenchmarkGetRelease(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := Get()
			p.Retain()
			p.Release()
			p.Release()
		}
	})
}
