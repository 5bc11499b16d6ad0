package report

import "time"

// Snapshot is the counters read at one instant: the relay's, from its
// /metrics and (given its PID) /proc, the load generator's own and the
// machine's. The measuring side takes them; every rate in a report is the
// difference between two.
type Snapshot struct {
	Nanos      int64         // when, on the measuring side's monotonic clock
	Metrics    *Metrics      // the relay's /metrics; nil if not scraped or it did not answer
	Relay      *Process      // the relay's /proc/<pid>; nil without its PID or if unreadable
	Host       *HostCPU      // the machine's /proc/stat; nil if unreadable
	SelfCPU    time.Duration // the load generator's user + system CPU
	Packets    uint64        // RTP packets read by every receiver so far
	Late       uint64        // in-window frames that arrived late so far
	Goroutines int           // the load generator's
}

// Process is what /proc says about the relay's process.
type Process struct {
	CPU     time.Duration // user + system
	RSS     int64         // resident set, bytes
	Wakeups int64         // voluntary context switches summed over its threads; -1 if unreadable
}

// HostCPU is the machine's CPU time, summed over every CPU.
type HostCPU struct {
	Busy  time.Duration // user, nice, system, irq, softirq
	Steal time.Duration // taken by the hypervisor
}

// NewSample is the time-series point for the interval from a to b: rates
// over it and the relay's levels at b. t0 is the run's start on the
// snapshots' clock; phase and up are the runner's at b.
func NewSample(t0 int64, a, b Snapshot, phase string, up int64) Sample {
	dt := float64(b.Nanos-a.Nanos) / 1e9
	s := Sample{
		T:     round3(float64(b.Nanos-t0) / 1e9),
		Phase: phase,
		Up:    up,
	}
	if dt <= 0 {
		return s
	}
	s.RecvPPS = round3(float64(b.Packets-a.Packets) / dt)
	s.Late = b.Late - a.Late
	s.LoadgenCPUPct = round3((b.SelfCPU - a.SelfCPU).Seconds() / dt * 100)
	if in, ok := metricDelta(a.Metrics, b.Metrics, "relay_packets_in_total"); ok {
		s.RelayInPPS = round3(in / dt)
	}
	if out, ok := metricDelta(a.Metrics, b.Metrics, "relay_packets_out_total"); ok {
		s.RelayOutPPS = round3(out / dt)
	}
	if cpu, _, ok := relayCPU(a, b); ok {
		s.RelayCPUPct = round3(cpu / dt * 100)
	}
	s.RelayRSSBytes = relayRSS(b)
	s.RelayHeapInuse, _ = b.Metrics.Value("go_memstats_heap_inuse_bytes")
	s.RelayHeapLive, _ = b.Metrics.Value("relay_gc_heap_live_bytes")
	s.RelayGoroutines, _ = b.Metrics.Value("go_goroutines")
	if h := hostShare(a, b); h.ok {
		s.OtherCPUPct = round3(h.other / dt * 100)
	}
	return s
}

// relayCPU returns the relay's CPU seconds between two snapshots and
// where they came from: /proc when the PID is known, else the relay's
// process_cpu_seconds_total.
func relayCPU(a, b Snapshot) (float64, string, bool) {
	if a.Relay != nil && b.Relay != nil {
		return (b.Relay.CPU - a.Relay.CPU).Seconds(), "proc", true
	}
	if d, ok := metricDelta(a.Metrics, b.Metrics, "process_cpu_seconds_total"); ok {
		return d, "metrics", true
	}
	return 0, "", false
}

// hostSeconds is the machine's CPU seconds between two snapshots: busy,
// busy minus the relay and the load generator, and steal.
type hostSeconds struct {
	busy, other, steal float64
	ok                 bool
}

func hostShare(a, b Snapshot) hostSeconds {
	if a.Host == nil || b.Host == nil {
		return hostSeconds{}
	}
	h := hostSeconds{
		busy:  (b.Host.Busy - a.Host.Busy).Seconds(),
		steal: (b.Host.Steal - a.Host.Steal).Seconds(),
		ok:    true,
	}
	relay, _, _ := relayCPU(a, b)
	h.other = max(h.busy-relay-(b.SelfCPU-a.SelfCPU).Seconds(), 0)
	return h
}

// relayRSS returns the relay's resident set at s, 0 if unknown.
func relayRSS(s Snapshot) float64 {
	if s.Relay != nil {
		return float64(s.Relay.RSS)
	}
	v, _ := s.Metrics.Value("process_resident_memory_bytes")
	return v
}
