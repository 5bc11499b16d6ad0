package loadtest

import (
	"slices"
	"time"

	"github.com/lianmai/relay/loadtest/report"
)

// FloodResult is what `loadtest flood` measured; it is the -json output.
// docs/loadtest.md ("The flood") describes every figure.
type FloodResult struct {
	Settings  FloodSettings  `json:"settings"`
	StartedAt time.Time      `json:"started_at"`
	Machine   report.Machine `json:"machine"`
	// FromAddr and LegitAddr are the local addresses the flood's and the
	// legitimate client's connections had (as the relay saw them).
	FromAddr  string `json:"from_addr,omitempty"`
	LegitAddr string `json:"legit_addr,omitempty"`
	// NofileSoft and NofileHard are the flood's own RLIMIT_NOFILE (set by
	// the command line).
	NofileSoft uint64 `json:"nofile_soft,omitempty"`
	NofileHard uint64 `json:"nofile_hard,omitempty"`

	Idle  FloodIdle   `json:"idle"`
	Joins FloodJoins  `json:"joins"`
	Total FloodTotals `json:"total"`
	Relay FloodRelay  `json:"relay"`
	Legit FloodLegit  `json:"legit"`
	STUN  *FloodSTUN  `json:"stun,omitempty"` // with -stun-rate

	// FloodSeconds is how long the flood was up: from its first
	// connection attempt to the close of its sockets.
	FloodSeconds float64       `json:"flood_seconds"`
	Series       []FloodSample `json:"series"`
	Warnings     []string      `json:"warnings,omitempty"`
}

// FloodSettings are the settings of the run, for the record.
type FloodSettings struct {
	URL             string  `json:"url"`
	From            string  `json:"from"`
	LegitFrom       string  `json:"legit_from,omitempty"`
	Idle            int     `json:"idle"`
	OpenRate        float64 `json:"open_rate"`
	Reopen          bool    `json:"reopen"`
	JoinRate        float64 `json:"join_rate"`
	JoinLeave       bool    `json:"join_leave"`
	DurationSeconds float64 `json:"duration_seconds"`
	SettleSeconds   float64 `json:"settle_seconds"`
	TimeoutSeconds  float64 `json:"timeout_seconds"`
	Legit           int     `json:"legit"`
	RelayPID        int     `json:"relay_pid,omitempty"`
}

// FloodUpgrades counts WebSocket upgrade attempts. Attempts = Accepted +
// Refused + Failed.
type FloodUpgrades struct {
	Attempts int64 `json:"attempts"`
	Accepted int64 `json:"accepted"` // HTTP 101: the WebSocket opened
	Refused  int64 `json:"refused"`  // an HTTP answer other than 101
	// RefusedByStatus counts refusals by HTTP status ("429", "503", ...).
	RefusedByStatus map[string]int64 `json:"refused_by_status,omitempty"`
	// RetryAfter counts the Retry-After values of refusals ("" if absent).
	RetryAfter map[string]int64 `json:"retry_after,omitempty"`
	Failed     int64            `json:"failed"` // no HTTP answer
	// FailedBy counts failures by kind: timeout (no answer within the
	// timeout), conn_refused, reset, eof, local_no_port, local_no_fd
	// (this machine ran out), cancelled, other.
	FailedBy map[string]int64 `json:"failed_by,omitempty"`
}

// FloodIdle is the idle flood: WebSockets that never send join.
type FloodIdle struct {
	FloodUpgrades
	OpenMax int64 `json:"open_max"` // most open at once
	// ClosedByRelay counts the open sockets the relay closed during the
	// flood, by close code ("1008"; "none": no close frame). The relay's
	// join timeout closes idle sockets with 1008.
	ClosedByRelay map[string]int64 `json:"closed_by_relay,omitempty"`
	// CloseReasons counts "code: reason" texts of those closes (the first
	// few distinct ones).
	CloseReasons map[string]int64 `json:"close_reasons,omitempty"`
	// HeldMs: how long a socket the relay closed had been open, ms.
	HeldMs report.Dist `json:"held_ms"`
}

// FloodJoins is the join flood: a new WebSocket per join, closed after the
// answer. Accepted = Joined + sum(Errors) + sum(ClosedBeforeJoined) +
// NoAnswer.
type FloodJoins struct {
	FloodUpgrades
	Skipped int64 `json:"skipped,omitempty"` // not attempted: too many joins in flight
	Joined  int64 `json:"joined"`
	// Errors counts joins answered with `error`, by code (rate_limited,
	// room_full, ...).
	Errors map[string]int64 `json:"errors,omitempty"`
	// ClosedBeforeJoined counts joins whose WebSocket the relay closed
	// before any answer, by close code ("none": no close frame).
	ClosedBeforeJoined map[string]int64 `json:"closed_before_joined,omitempty"`
	NoAnswer           int64            `json:"no_answer,omitempty"` // neither answer nor close within the timeout
	JoinedMs           report.Dist      `json:"joined_ms"`           // dial to joined, of the flood's joins
}

// FloodTotals add the idle and join floods.
type FloodTotals struct {
	FloodUpgrades
	// RefusedAfterUpgrade: joins answered with error or closed before
	// joined, and joins with no answer.
	RefusedAfterUpgrade int64 `json:"refused_after_upgrade"`
	// RefusedPerSec: HTTP refusals plus refusals after the upgrade per
	// second, over the flood's samples.
	RefusedPerSec FloodRate `json:"refused_per_sec"`
	// AttemptsPerSec: connection attempts per second, likewise.
	AttemptsPerSec FloodRate `json:"attempts_per_sec"`
}

// FloodRate is a per-second rate over the flood: its mean over the
// flood's length, the median and the peak of the per-interval samples.
type FloodRate struct {
	Mean   float64 `json:"mean"`
	Median float64 `json:"median"`
	Peak   float64 `json:"peak"`
}

// FloodRelay is what the relay spent, from /proc/<pid> (CPU, RSS) and
// its /metrics.
type FloodRelay struct {
	// CPUSource: "proc" (-relay-pid), "metrics" (process_cpu_seconds_total
	// and process_resident_memory_bytes) or "" (neither).
	CPUSource string      `json:"cpu_source"`
	Before    FloodLevel  `json:"before"`
	During    FloodDuring `json:"during"`
	After     FloodLevel  `json:"after"`
	// RSSPerIdleKiB is (RSS peak during - RSS before) / idle sockets open
	// at most, KiB: about what one idle connection costs the relay. Only
	// without a join flood (joins would count too).
	RSSPerIdleKiB float64 `json:"rss_per_idle_kib,omitempty"`
	// RefusedByReason is the increase of relay_connections_refused_total
	// over the run, by its labels; absent if the relay has no such metric.
	RefusedByReason map[string]float64 `json:"refused_by_reason,omitempty"`
	// ErrorsByCode is the increase of relay_signaling_errors_total, by code.
	ErrorsByCode map[string]float64 `json:"errors_by_code,omitempty"`
}

// FloodLevel is the relay at rest: CPU over a short window, RSS and
// metrics at its end.
type FloodLevel struct {
	CPUPct   float64            `json:"cpu_pct"` // percent of one core
	RSSBytes float64            `json:"rss_bytes"`
	Metrics  map[string]float64 `json:"metrics,omitempty"`
}

// FloodDuring is the relay during the flood, over the samples.
type FloodDuring struct {
	Samples        int                `json:"samples"`
	CPUPctMedian   float64            `json:"cpu_pct_median"`
	CPUPctPeak     float64            `json:"cpu_pct_peak"`
	RSSMedian      float64            `json:"rss_bytes_median"`
	RSSPeak        float64            `json:"rss_bytes_peak"`
	MetricsMedian  map[string]float64 `json:"metrics_median,omitempty"`
	MetricsPeak    map[string]float64 `json:"metrics_peak,omitempty"`
	LoadgenCPUPct  float64            `json:"loadgen_cpu_pct_median"` // this tool, median
	OtherCPUPct    float64            `json:"other_cpu_pct_median"`   // other processes, median
	IdleOpenMedian float64            `json:"idle_open_median"`
}

// FloodLegit is the legitimate client's joins, before and during the
// flood.
type FloodLegit struct {
	Room  string     `json:"room"`
	Quiet LegitJoins `json:"quiet"`
	Flood LegitJoins `json:"flood"`
	// P99Ratio is the flood's joined p99 over the quiet one (issue 17's
	// budget: at most 2).
	P99Ratio float64 `json:"p99_ratio,omitempty"`
}

// LegitJoins are one series of the legitimate client's joins, one at a
// time: dial to `joined`, and dial to the sub peer connection connected
// (ICE and DTLS done: the participant could hear the room).
type LegitJoins struct {
	Attempts    int         `json:"attempts"`
	Joined      int         `json:"joined"`    // got joined
	Connected   int         `json:"connected"` // and the sub connection connected
	Failed      int         `json:"failed"`    // Attempts - Connected
	Failures    []string    `json:"failures,omitempty"`
	JoinedMs    report.Dist `json:"joined_ms"`
	ConnectedMs report.Dist `json:"connected_ms"`
}

// FloodSample is one point of the time series: rates over the interval
// that ends at T, levels at T.
type FloodSample struct {
	T               float64 `json:"t"` // seconds since the start
	Phase           string  `json:"phase"`
	AttemptsPS      float64 `json:"attempts_ps"`
	AcceptedPS      float64 `json:"accepted_ps"`
	RefusedPS       float64 `json:"refused_ps"` // HTTP refusals and refusals after the upgrade
	FailedPS        float64 `json:"failed_ps"`
	ClosedByRelayPS float64 `json:"closed_by_relay_ps"` // idle sockets the relay closed
	IdleOpen        int64   `json:"idle_open"`
	RelayCPUPct     float64 `json:"relay_cpu_pct"`
	RelayRSSBytes   float64 `json:"relay_rss_bytes"`
	RelaySessions   float64 `json:"relay_sessions"`
	RelayGoroutines float64 `json:"relay_goroutines"`
	RelayHeapLive   float64 `json:"relay_heap_live_bytes"`
	RelayOpenFDs    float64 `json:"relay_open_fds"`
	LoadgenCPUPct   float64 `json:"loadgen_cpu_pct"`
	OtherCPUPct     float64 `json:"other_cpu_pct"`
}

// Flood phases, in order.
const (
	floodPhaseBefore = "before" // nothing running: the relay at rest
	floodPhaseQuiet  = "quiet"  // the legitimate client's baseline joins
	floodPhaseFlood  = "flood"
	floodPhaseClose  = "close" // the flood stopped, its sockets closing
	floodPhaseSettle = "settle"
)

// floodMetrics are the relay's metrics a flood reports, when present.
var floodMetrics = []string{
	"relay_signaling_sessions",
	"go_goroutines",
	"relay_gc_heap_live_bytes",
	"process_open_fds",
	"relay_participants",
	"relay_connections_refused_total",
}

// floodLabeled are the counters reported by label (their increase).
const (
	metricRefused = "relay_connections_refused_total"
	metricErrors  = "relay_signaling_errors_total"
)

// median of v (not modified); 0 for none.
func medianFloat(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}
