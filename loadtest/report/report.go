package report

import (
	"encoding/json"
	"time"
)

// Report is everything a run measured. docs/loadtest.md describes every
// field; its JSON form is what -json writes. Durations are in
// milliseconds unless a name says otherwise; percentages are 0..100.
type Report struct {
	Version    int       `json:"version"` // of this report's layout
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Scenario is the scenario the run played, as the JSON of
	// loadtest.Scenario (loadtest.ScenarioOf decodes it). It stays raw so
	// that this package need not import the measuring side, and so that a
	// saved report keeps every field its scenario had.
	Scenario json.RawMessage `json:"scenario"`
	Machine  Machine         `json:"machine"`
	Target   Target          `json:"target"`

	WindowSeconds float64 `json:"window_seconds"` // length of the measurement window

	Joins    Joins    `json:"joins"`
	Audio    Audio    `json:"audio"`
	Relay    Relay    `json:"relay"`
	Loadgen  Loadgen  `json:"loadgen"`
	Host     Host     `json:"host"`
	Churn    Churn    `json:"churn"`
	Mic      Mic      `json:"mic"`
	PK       PK       `json:"pk"`
	Series   []Sample `json:"series"`
	Charts   Charts   `json:"charts"`
	Warnings []string `json:"warnings"`
	// Cluster is a run over several relays (cluster.go); absent otherwise.
	Cluster *Cluster `json:"cluster,omitempty"`
}

// Version is Report.Version: the layout of the JSON report, which saved
// reports and the scripts that read them rely on.
const Version = 1

// Machine is where the load generator ran.
type Machine struct {
	Hostname  string `json:"hostname"`
	NumCPU    int    `json:"num_cpu"`   // processors on the machine
	CPUsUsed  int    `json:"cpus_used"` // processors the load generator may run on (taskset)
	CPUModel  string `json:"cpu_model"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// Target is the relay under test.
type Target struct {
	URL        string `json:"url"`
	MetricsURL string `json:"metrics_url"`
	PID        int    `json:"pid"` // 0 when not given
}

// Joins covers every join: the ramp's, churn's and mic cycling's.
type Joins struct {
	Planned     int      `json:"planned"`   // joins the ramp planned
	Attempted   int      `json:"attempted"` // joins started, all causes
	Succeeded   int      `json:"succeeded"`
	Failed      int      `json:"failed"`
	Failures    []string `json:"failures"`     // the first few, with the relay's or the network's reason
	JoinedMs    Dist     `json:"joined_ms"`    // WebSocket dial to the joined message
	ConnectedMs Dist     `json:"connected_ms"` // dial to sub (and pub) peer connection connected
	// FirstPacketMs is the join latency: dial to the first packet of each
	// publisher that was already sending when the dial started, one value
	// per (receiver, publisher).
	FirstPacketMs Dist `json:"first_packet_ms"`
}

// Audio is what listeners got during the window, over every
// (receiver, publisher) stream.
type Audio struct {
	Publishers        int      `json:"publishers"`         // publishers that sent during the run
	Receivers         int      `json:"receivers"`          // participants that received at least one stream
	Streams           int      `json:"streams"`            // (receiver, publisher) pairs with packets
	FramesSent        uint64   `json:"frames_sent"`        // frames every publisher wrote, whole run
	FramesDropped     uint64   `json:"frames_dropped"`     // frames publishers dropped by injected loss, whole run
	PacketsReceived   uint64   `json:"packets_received"`   // RTP packets read by receivers in the window, duplicates included
	ExpectedFrames    int64    `json:"expected_frames"`    // frames sent in the window, summed over streams (sender-dropped included)
	LostFrames        int64    `json:"lost_frames"`        // sent, never received
	LossPct           float64  `json:"loss_pct"`           // lost / (expected - sender-dropped)
	LateFrames        uint64   `json:"late_frames"`        // received more than 40 ms after their send time
	LatePct           float64  `json:"late_pct"`           // late / received
	StutterFrames     int64    `json:"stutter_frames"`     // frames a 40 ms playout deadline had to conceal
	StutterPct        float64  `json:"stutter_pct"`        // stutter / expected
	Duplicates        uint64   `json:"duplicates"`         // packets for a frame already received
	SeqMismatches     uint64   `json:"seq_mismatches"`     // packets whose sequence number differs from the one sent (the relay rebased it)
	UnknownPackets    uint64   `json:"unknown_packets"`    // packets whose timestamp matches no frame sent
	MissingPublishers int      `json:"missing_publishers"` // (receiver, publisher) pairs that should have flowed and never did
	Missing           []string `json:"missing"`            // the first few of those
	OneWayMs          Dist     `json:"one_way_ms"`         // publisher send to receiver read, every in-window packet
	PacerLateMs       Dist     `json:"pacer_late_ms"`      // how late publishers woke for each frame (load generator health)
	Decoded           Decoded  `json:"decoded"`
	Uplink            Uplink   `json:"uplink"`
	RepairedFrames    uint64   `json:"repaired_frames"` // in-window frames lost on the uplink that receivers got anyway, summed over streams
	RepairMs          Dist     `json:"repair_ms"`       // send to arrival of those: how long NACK repair took
	// Mix is the audience on the room's mix, a stream class of its own:
	// every figure above is of the publishers' tracks only.
	Mix Mix `json:"mix"`
}

// Mix is what the audience on the room's mix (join's listen "mix", issue
// 12) got during the window: one stream per listener, measured against
// the mix's own RTP clock, since its timestamps are the mixer's and no
// publisher's send log matches them. Frame k (timestamp ts0 + 480k, ts0
// the first packet's) is due at the first packet's arrival + k × 10 ms;
// late and stutter use the same 40 ms playout deadline as the tracks.
type Mix struct {
	Listeners        int      `json:"listeners"`         // audience members that asked for the mix and joined
	Receivers        int      `json:"receivers"`         // of those, received the mix
	Streams          int      `json:"streams"`           // mix tracks received (one per receiver unless renegotiated)
	PacketsReceived  uint64   `json:"packets_received"`  // RTP packets of the mix read, whole run, padding and duplicates included
	ExpectedPackets  int64    `json:"expected_packets"`  // sequence numbers from each stream's first in-window packet to its last, summed
	LostPackets      int64    `json:"lost_packets"`      // of those, never received (gaps in the sequence numbers)
	LossPct          float64  `json:"loss_pct"`          // lost / expected packets
	SkippedFrames    int64    `json:"skipped_frames"`    // frames the timestamps skip with no sequence number missing: ticks the mixer sent nothing for
	ExpectedFrames   int64    `json:"expected_frames"`   // frames due in the window on the mix clock, from each stream's first packet, summed
	LateFrames       uint64   `json:"late_frames"`       // received more than 40 ms after their due time
	LatePct          float64  `json:"late_pct"`          // late / received
	StutterFrames    int64    `json:"stutter_frames"`    // expected frames not received by their due time + 40 ms
	StutterPct       float64  `json:"stutter_pct"`       // stutter / expected frames
	Duplicates       uint64   `json:"duplicates"`        // in-window packets whose sequence number was read already
	UnknownPackets   uint64   `json:"unknown_packets"`   // sequence numbers too far from the stream's to place (a restarted mixer)
	LatenessMs       Dist     `json:"lateness_ms"`       // arrival − due time of every in-window packet (early counts 0): the arrival jitter
	FirstPacketMs    Dist     `json:"first_packet_ms"`   // dial to the first packet of the mix, for listeners whose room was already sending
	MissingListeners int      `json:"missing_listeners"` // listeners that never got the mix though up for 3 s while their room's publishers sent
	Missing          []string `json:"missing"`           // the first few of those
	TracksInstead    int      `json:"tracks_instead"`    // listeners that got publishers' tracks instead: the relay ignored listen "mix"
	Decoded          Decoded  `json:"decoded"`           // the mix's stutter sample, decoded with libopus
}

// Uplink is what happened between the publishers and the relay over
// the whole run: packets lost there by injected loss (loss_at "network"),
// before any repair, and the relay's NACKs and the retransmissions they
// brought. The loss listeners got after repair is Audio.LossPct.
type Uplink struct {
	Packets             uint64  `json:"packets"`              // first transmissions written toward the relay
	Lost                uint64  `json:"lost"`                 // of those, lost by injected loss
	LossPct             float64 `json:"loss_pct"`             // lost / packets: the loss before repair
	NACKs               uint64  `json:"nacks"`                // RTCP NACK packets the publishers received from the relay
	NACKedPackets       uint64  `json:"nacked_packets"`       // sequence numbers those asked for, repeats included
	Retransmissions     uint64  `json:"retransmissions"`      // packets the publishers' NACK responders sent again
	RetransmissionsLost uint64  `json:"retransmissions_lost"` // of those, lost again by injected loss
}

// Decoded is the stutter sample: receivers that decode every frame
// and conceal missing ones with the Opus decoder.
type Decoded struct {
	Receivers       int     `json:"receivers"`
	Streams         int     `json:"streams"`
	FramesDecoded   uint64  `json:"frames_decoded"`
	FramesConcealed uint64  `json:"frames_concealed"`
	DecodeErrors    uint64  `json:"decode_errors"`
	StutterPct      float64 `json:"stutter_pct"` // concealed / (decoded + concealed)
}

// Relay is what the relay spent during the window, from its
// /metrics and, with -relay-pid, /proc.
type Relay struct {
	MetricsOK          bool    `json:"metrics_ok"`  // /metrics answered at both ends of the window
	CPUSource          string  `json:"cpu_source"`  // "proc" or "metrics" or "" (none)
	CPUSeconds         float64 `json:"cpu_seconds"` // user + system CPU in the window
	CPUPct             float64 `json:"cpu_pct"`     // of one core
	PacketsIn          float64 `json:"packets_in"`  // relay_packets_in_total delta
	PacketsOut         float64 `json:"packets_out"` // relay_packets_out_total delta
	PacketsOutPerSec   float64 `json:"packets_out_per_sec"`
	CPUMicrosPerPacket float64 `json:"cpu_us_per_packet_out"` // cpu_seconds / packets_out, µs
	PacketsDropped     float64 `json:"packets_dropped"`       // relay_packets_dropped_total delta, all reasons
	NACKsRequested     float64 `json:"nacks_requested"`       // relay_nack_requested_total delta
	GCPauses           float64 `json:"gc_pauses"`             // stop-the-world pauses in the window
	GCPauseP99Ms       float64 `json:"gc_pause_p99_ms"`       // bucket upper bound
	GCPauseMaxMs       float64 `json:"gc_pause_max_ms"`       // upper bound of the highest non-empty bucket
	GCCPUPct           float64 `json:"gc_cpu_pct"`            // relay_gc_cpu_seconds_total / relay_cpu_seconds_total deltas
	RSSBytes           float64 `json:"rss_bytes"`             // at the end of the window
	RSSMaxBytes        float64 `json:"rss_max_bytes"`         // the most seen by any sample of the run
	Goroutines         float64 `json:"goroutines"`            // at the end of the window
	GOGC               float64 `json:"gogc"`                  // relay_gogc; -1 off
	GOMemLimitBytes    float64 `json:"gomemlimit_bytes"`      // relay_gomemlimit_bytes; 9.2e18 means none
	JoinP50Ms          float64 `json:"join_p50_ms"`           // relay_join_latency_seconds over the run, bucket bound
	JoinP99Ms          float64 `json:"join_p99_ms"`
	ForwardP50Ms       float64 `json:"forward_p50_ms"` // relay_forward_latency_seconds in the window (read to written), bucket bound
	ForwardP99Ms       float64 `json:"forward_p99_ms"`
	// FanoutP50Ms and FanoutP99Ms: relay_fanout_seconds in the window (a
	// packet's read to its last copy handed to the kernel), bucket bounds.
	FanoutP50Ms float64 `json:"fanout_p50_ms"`
	FanoutP99Ms float64 `json:"fanout_p99_ms"`
	// WakeupsPerPacket is the relay's threads' voluntary context switches
	// in the window per packet out (with -relay-pid); 0 if unknown.
	WakeupsPerPacket float64 `json:"wakeups_per_packet_out"`
	// CPUMsPerJoin is the relay's CPU per audience join over the audience's
	// ramp (dial to sub connected), less the forwarding it did meanwhile
	// at the window's cost per packet; 0 if unknown.
	CPUMsPerJoin float64 `json:"cpu_ms_per_join"`
}

// Loadgen is the load generator's own cost during the window.
type Loadgen struct {
	CPUSeconds         float64 `json:"cpu_seconds"`
	CPUPct             float64 `json:"cpu_pct"` // of one core
	CPUMicrosPerPacket float64 `json:"cpu_us_per_packet_received"`
	PacketsPerSec      float64 `json:"packets_per_sec"` // received
	RSSBytes           int64   `json:"rss_bytes"`
	Goroutines         int     `json:"goroutines"`
	GOMAXPROCS         int     `json:"gomaxprocs"`
}

// Host is the whole machine's CPU during the window, to tell a
// clean run from one that shared the machine. Percentages are of one core.
type Host struct {
	BusyPct  float64 `json:"busy_pct"`  // every process, every CPU
	OtherPct float64 `json:"other_pct"` // busy minus the relay and the load generator: other processes
	StealPct float64 `json:"steal_pct"` // taken by the hypervisor
}

// Churn counts audience leave-and-rejoin events.
type Churn struct {
	Leaves      int `json:"leaves"`
	Rejoins     int `json:"rejoins"`
	LeaveErrors int `json:"leave_errors"`
}

// Mic counts mic cycles: audience -> guest (publishing) -> audience.
type Mic struct {
	Enabled     bool     `json:"enabled"`
	Unsupported bool     `json:"unsupported"` // the relay answered bad_request to mic_request
	Attempts    int      `json:"attempts"`
	Granted     int      `json:"granted"`  // became guest and published
	Released    int      `json:"released"` // back to audience
	Failures    []string `json:"failures"`
	GrantMs     Dist     `json:"grant_ms"`   // mic_request to role_changed guest
	ReleaseMs   Dist     `json:"release_ms"` // mic_release to role_changed audience
	// PublishMs is from role_changed guest to the guest's first frame
	// sent (its pub connection set up); HostHeardMs to a host's first
	// packet of the guest: what "the host hears the guest" takes.
	PublishMs   Dist `json:"publish_ms"`
	HostHeardMs Dist `json:"host_heard_ms"`
}

// PK counts cross-room links (scenario pk): rooms paired and linked
// (pk_invite, pk_accept) after the ramp, before the window.
type PK struct {
	Enabled  bool     `json:"enabled"`
	Links    int      `json:"links"` // pairs of rooms linked
	Failures []string `json:"failures"`
	// SetupMs is from a host's pk_accept to the first packet of a
	// publisher of the other room at each host (both directions of each
	// link).
	SetupMs Dist `json:"setup_ms"`
	// RemoteHostMs is the one-way latency of every in-window packet a
	// host received from a publisher of the linked room; LocalHostMs of
	// those from its own room's publishers: what the link adds is the
	// difference.
	RemoteHostMs Dist `json:"remote_host_ms"`
	LocalHostMs  Dist `json:"local_host_ms"`
}

// Sample is one point of the time series, taken every second.
type Sample struct {
	T               float64 `json:"t"`     // seconds since the run started
	Phase           string  `json:"phase"` // ramp, settle, measure, teardown
	Up              int64   `json:"up"`    // participants joined and connected
	RecvPPS         float64 `json:"recv_pps"`
	Late            uint64  `json:"late"` // in-window frames that arrived late during this interval
	RelayInPPS      float64 `json:"relay_in_pps"`
	RelayOutPPS     float64 `json:"relay_out_pps"`
	RelayCPUPct     float64 `json:"relay_cpu_pct"`
	LoadgenCPUPct   float64 `json:"loadgen_cpu_pct"`
	RelayRSSBytes   float64 `json:"relay_rss_bytes"`
	RelayHeapInuse  float64 `json:"relay_heap_inuse_bytes"` // go_memstats_heap_inuse_bytes at the sample, 0 if unknown
	RelayHeapLive   float64 `json:"relay_heap_live_bytes"`  // relay_gc_heap_live_bytes (live heap at the last GC), 0 if unknown
	RelayGoroutines float64 `json:"relay_goroutines"`       // go_goroutines at the sample, 0 if unknown
	OtherCPUPct     float64 `json:"other_cpu_pct"`          // other processes on the machine, % of one core
}

// Charts are the CDFs the HTML report draws: [value ms, fraction] pairs.
type Charts struct {
	JoinCDF   [][2]float64 `json:"join_cdf"`
	OneWayCDF [][2]float64 `json:"one_way_cdf"`
}
