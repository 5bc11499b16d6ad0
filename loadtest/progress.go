package loadtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lianmai/relay/loadtest/report"
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
	prev, _ := r.snap(ctx)
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
		cur, _ := r.snap(ctx)
		s := report.NewSample(r.startNs, prev, cur, phaseNames[r.phase.Load()], r.up.Load())
		r.mu.Lock()
		r.series = append(r.series, s)
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

// isTerminal says whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
