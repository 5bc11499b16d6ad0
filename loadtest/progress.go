package loadtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// sample takes a time-series point every interval until ctx ends, and
// prints the progress line.
func (r *runner) sample(ctx context.Context) {
	every := r.cfg.Interval
	if every <= 0 {
		every = time.Second
	}
	tty := isTerminal(r.cfg.Progress)
	t := time.NewTicker(every)
	defer t.Stop()
	prev := r.snap(ctx)
	lastPrint := time.Time{}
	for {
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(r.cfg.Progress)
			}
			return
		case <-t.C:
		}
		cur := r.snap(ctx)
		s := r.point(prev, cur)
		r.mu.Lock()
		r.series = append(r.series, s)
		r.relayRSSMax = max(r.relayRSSMax, s.RelayRSSBytes)
		r.mu.Unlock()
		prev = cur
		if r.cfg.Progress == nil {
			continue
		}
		// On a terminal the line rewrites itself every tick; in a log,
		// one line every 5 s is enough.
		if !tty && time.Since(lastPrint) < 5*time.Second {
			continue
		}
		lastPrint = time.Now()
		line := fmt.Sprintf("[%6.1fs] %-8s up %d/%d  recv %.0f pkt/s  late %d  relay out %.0f pkt/s  relay cpu %.0f%%  loadgen cpu %.0f%%",
			s.T, s.Phase, s.Up, r.sc.Participants(), s.RecvPPS, s.Late, s.RelayOutPPS, s.RelayCPUPct, s.LoadgenCPUPct)
		if tty {
			fmt.Fprintf(r.cfg.Progress, "\r%-110s", line)
		} else {
			fmt.Fprintln(r.cfg.Progress, line)
		}
	}
}

// point turns two snapshots into a time-series point.
func (r *runner) point(a, b snapshot) Sample {
	dt := float64(b.ns-a.ns) / 1e9
	s := Sample{
		T:     round3(float64(b.ns-r.startNs) / 1e9),
		Phase: phaseNames[r.phase.Load()],
		Up:    r.up.Load(),
	}
	if dt <= 0 {
		return s
	}
	s.RecvPPS = round3(float64(b.packets-a.packets) / dt)
	s.Late = b.late - a.late
	s.LoadgenCPUPct = round3((b.selfCPU - a.selfCPU).Seconds() / dt * 100)
	if in, ok := promDelta(a.prom, b.prom, "relay_packets_in_total"); ok {
		s.RelayInPPS = round3(in / dt)
	}
	if out, ok := promDelta(a.prom, b.prom, "relay_packets_out_total"); ok {
		s.RelayOutPPS = round3(out / dt)
	}
	if cpu, _, ok := relayCPU(a, b); ok {
		s.RelayCPUPct = round3(cpu / dt * 100)
	}
	s.RelayRSSBytes = relayRSS(b)
	s.RelayHeapInuse, _ = b.prom.value("go_memstats_heap_inuse_bytes")
	s.RelayHeapLive, _ = b.prom.value("relay_gc_heap_live_bytes")
	s.RelayGoroutines, _ = b.prom.value("go_goroutines")
	if h := hostShare(a, b); h.ok {
		s.OtherCPUPct = round3(h.other / dt * 100)
	}
	return s
}

// promDelta returns a counter's increase from a to b.
func promDelta(a, b *promSnapshot, name string) (float64, bool) {
	va, okA := a.value(name)
	vb, okB := b.value(name)
	if !okA || !okB {
		return 0, false
	}
	return vb - va, true
}

// relayCPU returns the relay's CPU seconds between two snapshots and
// where they came from: /proc when the PID is known, else the relay's
// process_cpu_seconds_total.
func relayCPU(a, b snapshot) (float64, string, bool) {
	if a.procOK && b.procOK {
		return (b.proc.cpu - a.proc.cpu).Seconds(), "proc", true
	}
	if d, ok := promDelta(a.prom, b.prom, "process_cpu_seconds_total"); ok {
		return d, "metrics", true
	}
	return 0, "", false
}

// hostShare is the machine's CPU seconds between two snapshots: busy,
// busy minus the relay and the load generator, and steal.
type hostSeconds struct {
	busy, other, steal float64
	ok                 bool
}

func hostShare(a, b snapshot) hostSeconds {
	if !a.host.ok || !b.host.ok {
		return hostSeconds{}
	}
	h := hostSeconds{
		busy:  (b.host.busy - a.host.busy).Seconds(),
		steal: (b.host.steal - a.host.steal).Seconds(),
		ok:    true,
	}
	relay, _, _ := relayCPU(a, b)
	h.other = max(h.busy-relay-(b.selfCPU-a.selfCPU).Seconds(), 0)
	return h
}

// relayRSS returns the relay's resident set at s, 0 if unknown.
func relayRSS(s snapshot) float64 {
	if s.procOK {
		return float64(s.proc.rss)
	}
	v, _ := s.prom.value("process_resident_memory_bytes")
	return v
}

// isTerminal says whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
