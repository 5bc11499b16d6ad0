package gctune

import (
	"runtime/metrics"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// pauseBuckets are the upper bounds (seconds) of relay_gc_pause_seconds.
var pauseBuckets = []float64{
	5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 200e-6, 500e-6,
	1e-3, 2e-3, 5e-3, 10e-3, 50e-3, 100e-3,
}

// Indexes into collector.samples, in the order of sampleNames.
const (
	samplePauses = iota
	sampleGCCPU
	sampleTotalCPU
	sampleGOGC
	sampleMemLimit
	sampleHeapLive
)

var sampleNames = []string{
	samplePauses:   "/sched/pauses/total/gc:seconds",
	sampleGCCPU:    "/cpu/classes/gc/total:cpu-seconds",
	sampleTotalCPU: "/cpu/classes/total:cpu-seconds",
	// The settings are read here rather than with the SetGCPercent /
	// SetMemoryLimit(-1) trick or from Applied: no side effect, and they
	// show what is in force even if something changes it after Apply.
	sampleGOGC:     "/gc/gogc:percent",
	sampleMemLimit: "/gc/gomemlimit:bytes",
	sampleHeapLive: "/gc/heap/live:bytes",
}

type collector struct {
	pause, gcCPU, cpu, fraction, memLimit, gogc, heapLive *prometheus.Desc

	mu sync.Mutex
	// samples is guarded by mu and reused so that metrics.Read can reuse
	// the histogram's storage from scrape to scrape.
	samples []metrics.Sample
	// rebucket is guarded by mu; built at the first scrape and kept, since
	// the runtime never changes a histogram's bucket edges.
	rebucket *rebucketer
}

// NewCollector returns a prometheus.Collector that reads runtime/metrics at
// scrape time and exports relay_gc_pause_seconds, relay_gc_cpu_seconds_total,
// relay_cpu_seconds_total, relay_gc_cpu_fraction, relay_gomemlimit_bytes,
// relay_gogc and relay_gc_heap_live_bytes.
func NewCollector() prometheus.Collector {
	c := &collector{
		pause: prometheus.NewDesc("relay_gc_pause_seconds",
			"Individual GC stop-the-world pause latencies (runtime/metrics /sched/pauses/total/gc:seconds; "+
				"a GC cycle usually pauses twice), re-bucketed from the runtime's finer buckets: a runtime bucket "+
				"counts toward the first bucket holding its upper edge. The sum is estimated from runtime bucket "+
				"midpoints, not measured.", nil, nil),
		gcCPU: prometheus.NewDesc("relay_gc_cpu_seconds_total",
			"Estimated CPU time spent on GC tasks (runtime/metrics /cpu/classes/gc/total:cpu-seconds): mark "+
				"assists, mark workers, and pauses counted as GOMAXPROCS x pause time. An overestimate not "+
				"comparable to OS CPU time; compare only with relay_cpu_seconds_total.", nil, nil),
		cpu: prometheus.NewDesc("relay_cpu_seconds_total",
			"CPU time available to Go code and the Go runtime: GOMAXPROCS integrated over the wall-clock time "+
				"the process has run (runtime/metrics /cpu/classes/total:cpu-seconds). Capacity, not usage; not "+
				"comparable to OS CPU time; use it as the denominator for relay_gc_cpu_seconds_total.", nil, nil),
		fraction: prometheus.NewDesc("relay_gc_cpu_fraction",
			"Fraction of the available CPU (GOMAXPROCS x wall time) spent on GC since process start: "+
				"relay_gc_cpu_seconds_total / relay_cpu_seconds_total.", nil, nil),
		memLimit: prometheus.NewDesc("relay_gomemlimit_bytes",
			"Go runtime soft memory limit in force (GOMEMLIMIT, debug.SetMemoryLimit), read from "+
				"runtime/metrics /gc/gomemlimit:bytes at scrape; 9.223372036854776e+18 (math.MaxInt64) means none.", nil, nil),
		gogc: prometheus.NewDesc("relay_gogc",
			"GOGC in force (heap growth percent that triggers a GC; GOGC, debug.SetGCPercent), read from "+
				"runtime/metrics /gc/gogc:percent at scrape; -1 means the collector is off.", nil, nil),
		heapLive: prometheus.NewDesc("relay_gc_heap_live_bytes",
			"Heap memory the last GC found reachable (runtime/metrics /gc/heap/live:bytes): the live heap, "+
				"without the garbage that heap-in-use figures also count between collections. Steady under "+
				"a steady load; growth here is a leak.", nil, nil),
		samples: make([]metrics.Sample, len(sampleNames)),
	}
	for i, name := range sampleNames {
		c.samples[i].Name = name
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pause, c.gcCPU, c.cpu, c.fraction, c.memLimit, c.gogc, c.heapLive} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	// Build under the lock, send outside it: a slow consumer of ch must not
	// hold up a concurrent scrape.
	for _, m := range c.snapshot() {
		ch <- m
	}
}

// snapshot reads runtime/metrics and turns the samples into constant
// metrics. A metric the runtime does not support (KindBad) is left out.
func (c *collector) snapshot() []prometheus.Metric {
	c.mu.Lock()
	defer c.mu.Unlock()
	metrics.Read(c.samples)
	out := make([]prometheus.Metric, 0, len(c.samples)+1)

	if s := c.samples[samplePauses].Value; s.Kind() == metrics.KindFloat64Histogram {
		h := s.Float64Histogram()
		if c.rebucket == nil || len(c.rebucket.target) != len(h.Counts) {
			c.rebucket = newRebucketer(h.Buckets, pauseBuckets)
		}
		count, sum, buckets := c.rebucket.apply(h.Counts)
		out = append(out, prometheus.MustNewConstHistogram(c.pause, count, sum, buckets))
	}
	gc, gcOK := float64Value(c.samples[sampleGCCPU].Value)
	total, totalOK := float64Value(c.samples[sampleTotalCPU].Value)
	if gcOK {
		out = append(out, prometheus.MustNewConstMetric(c.gcCPU, prometheus.CounterValue, gc))
	}
	if totalOK {
		out = append(out, prometheus.MustNewConstMetric(c.cpu, prometheus.CounterValue, total))
	}
	if gcOK && totalOK {
		frac := 0.0
		if total > 0 {
			frac = min(gc/total, 1)
		}
		out = append(out, prometheus.MustNewConstMetric(c.fraction, prometheus.GaugeValue, frac))
	}
	if s := c.samples[sampleMemLimit].Value; s.Kind() == metrics.KindUint64 {
		out = append(out, prometheus.MustNewConstMetric(c.memLimit, prometheus.GaugeValue, float64(s.Uint64())))
	}
	if s := c.samples[sampleHeapLive].Value; s.Kind() == metrics.KindUint64 {
		out = append(out, prometheus.MustNewConstMetric(c.heapLive, prometheus.GaugeValue, float64(s.Uint64())))
	}
	if s := c.samples[sampleGOGC].Value; s.Kind() == metrics.KindUint64 {
		// The runtime stores GOGC as an int32 and reports it as uint64, so
		// "off" (-1) arrives as MaxUint64; the conversion restores -1.
		out = append(out, prometheus.MustNewConstMetric(c.gogc, prometheus.GaugeValue, float64(int64(s.Uint64()))))
	}
	return out
}

func float64Value(v metrics.Value) (float64, bool) {
	if v.Kind() != metrics.KindFloat64 {
		return 0, false
	}
	return v.Float64(), true
}
