package loadtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lianmai/relay/loadtest/report"
)

// Scenario is what a run does. It comes from a JSON file (LoadScenario),
// from flags, or both; zero fields take the defaults of WithDefaults.
// docs/loadtest.md describes each field.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`

	Rooms    int `json:"rooms"`    // rooms, each with the participants below
	Hosts    int `json:"hosts"`    // publishers with role host, per room
	Guests   int `json:"guests"`   // publishers with role guest, per room
	Audience int `json:"audience"` // receivers with role audience, per room

	JoinRate        float64  `json:"join_rate"`        // joins started per second, all rooms together
	JoinBurst       bool     `json:"join_burst"`       // the audience joins all at once, ignoring join_rate and join_concurrency
	JoinConcurrency int      `json:"join_concurrency"` // joins in flight at once
	JoinTimeout     Duration `json:"join_timeout"`     // one join: dial to connected
	Settle          Duration `json:"settle"`           // after the last join, before measuring
	Duration        Duration `json:"duration"`         // the measurement window

	// What the audience asks for in join's listen field (issue 12): every
	// audience member ListenTracks (one track per publisher, the default)
	// or ListenMix (the room's mix); with ListenTracks, the first
	// MixAudience of each room's audience take the mix instead, so that
	// one run measures both.
	AudienceListen string `json:"audience_listen"`
	MixAudience    int    `json:"mix_audience"`

	// How the audience reaches the relay: TransportUDP (the default),
	// TransportTCP, or through the relay's TURN server (TransportTURNUDP,
	// TransportTURNTCP, TransportTURNTLS), which the relay must run.
	Transport string `json:"transport"`

	ChurnPerMin float64 `json:"churn_per_min"` // audience leave-and-rejoin events per room per minute

	// PK links the rooms in pairs (0 with 1, 2 with 3, ...) after the
	// ramp: the first host of the even room invites the odd one, whose
	// first host accepts (cross-room co-streaming, docs/protocol.md).
	PK bool `json:"pk"`

	MicCycleEvery Duration `json:"mic_cycle_every"` // per room: an audience member asks for the mic this often; 0 off
	MicHold       Duration `json:"mic_hold"`        // how long a mic guest publishes before releasing
	// MicPub: when a mic guest negotiates its pub connection: MicPubEarly
	// (the default: with its request) or MicPubAfter (after role_changed,
	// as a version 1 client).
	MicPub         string   `json:"mic_pub"`
	MicAcceptDelay Duration `json:"mic_accept_delay"` // the host's time to decide, from mic_requested to mic_accept

	LossPct   float64  `json:"loss_pct"`   // packets each publisher loses, percent
	LossBurst float64  `json:"loss_burst"` // mean length of a loss burst, in frames (1: independent losses)
	LossAt    string   `json:"loss_at"`    // where: LossNetwork (default) or LossSender
	Jitter    Duration `json:"jitter"`     // each frame is held back a random 0..jitter before sending

	DecodePerRoom int      `json:"decode_per_room"` // receivers per room that decode and conceal (the stutter sample)
	AudioLoop     Duration `json:"audio_loop"`      // length of each publisher's pre-encoded voice loop
	NACK          *bool    `json:"nack"`            // publishers and decoding receivers negotiate NACK; default true
	LeanNACK      bool     `json:"lean_nack"`       // lean receivers (audience not decoding) negotiate NACK too; default false
	// BareReceivers: lean receivers run no pion interceptor at all (no
	// NACK, no RTCP reports), as the receivers of the comparisons with
	// other SFUs in docs/performance.md.
	BareReceivers bool `json:"bare_receivers"`
	// SinkAudience is how many more audience members each room has whose
	// sockets drop the relay's media in the kernel (a socket filter): they
	// join, connect and stay connected, so the relay fans out to them as
	// to anyone, but the load generator spends nothing per packet on them
	// and they are left out of every receive figure. What lets one
	// machine hold a room of 2,000 listeners (the fanout2000 scenario).
	// Linux only.
	SinkAudience int   `json:"sink_audience"`
	Seed         int64 `json:"seed"` // voices, loss and jitter; 0 means 1
}

// Where injected loss happens (Scenario.LossAt).
const (
	// LossNetwork loses packets between the publisher's RTP stack and the
	// relay: after pion's NACK responder has kept them, so the relay's
	// NACK can bring them back. Retransmissions cross the same lossy link.
	LossNetwork = "network"
	// LossSender drops frames before they reach pion, as a sender that
	// never sent them would: nothing can repair them.
	LossSender = "sender"
)

// What an audience member hears (Scenario.AudienceListen), as join's
// listen field names it.
const (
	ListenTracks = "tracks" // one track per publisher
	ListenMix    = "mix"    // one track: the room's mix (MediaStream id "mix")
)

// Duration is a time.Duration written in JSON as a Go duration string
// ("20s", "1m30s"); a bare number is seconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("duration must be a string like \"20s\" or a number of seconds, not %s", b)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// LoadScenario reads a scenario from a JSON file. Unknown fields are an
// error, so that a typo does not silently run a different scenario.
func LoadScenario(path string) (Scenario, error) {
	var s Scenario
	data, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("read scenario: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("scenario %s: %w (see docs/loadtest.md for the format)", path, err)
	}
	if s.Name == "" {
		base := path[strings.LastIndex(path, "/")+1:]
		s.Name = strings.TrimSuffix(base, ".json")
	}
	return s, nil
}

// ScenarioOf decodes the scenario a report recorded. Package report keeps
// it as raw JSON so as not to depend on this package; fields a newer
// scenario has and this one does not are ignored, so old and new reports
// both read.
func ScenarioOf(rep *report.Report) (Scenario, error) {
	var s Scenario
	if len(rep.Scenario) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(rep.Scenario, &s); err != nil {
		return s, fmt.Errorf("the report's scenario: %w", err)
	}
	return s, nil
}

// WithDefaults returns s with every zero field set to its default.
func (s Scenario) WithDefaults() Scenario {
	if s.Name == "" {
		s.Name = "custom"
	}
	if s.Rooms == 0 {
		s.Rooms = 1
	}
	if s.JoinRate == 0 {
		s.JoinRate = 20
	}
	if s.JoinConcurrency == 0 {
		s.JoinConcurrency = 8
	}
	if s.JoinTimeout == 0 {
		s.JoinTimeout = Duration(15 * time.Second)
	}
	if s.Settle == 0 {
		s.Settle = Duration(2 * time.Second)
	}
	if s.Duration == 0 {
		s.Duration = Duration(20 * time.Second)
	}
	if s.MicHold == 0 {
		s.MicHold = Duration(3 * time.Second)
	}
	if s.MicPub == "" {
		s.MicPub = MicPubEarly
	}
	if s.LossBurst == 0 {
		s.LossBurst = 1
	}
	if s.AudienceListen == "" {
		s.AudienceListen = ListenTracks
	}
	if s.Transport == "" {
		s.Transport = TransportUDP
	}
	if s.LossAt == "" {
		s.LossAt = LossNetwork
	}
	if s.AudioLoop == 0 {
		s.AudioLoop = Duration(2 * time.Second)
	}
	if s.NACK == nil {
		t := true
		s.NACK = &t
	}
	if s.Seed == 0 {
		s.Seed = 1
	}
	return s
}

// Limits on a scenario, beyond which it is refused as a mistake.
const (
	maxParticipants = 20000
	maxDuration     = 2 * time.Hour
	maxSeats        = 64
)

// Validate reports everything wrong with s (after WithDefaults), one
// line each, saying how to fix it.
func (s Scenario) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Rooms < 1 {
		bad("rooms = %d: need at least 1", s.Rooms)
	}
	if s.Hosts < 0 || s.Guests < 0 || s.Audience < 0 {
		bad("hosts, guests and audience must not be negative (got %d, %d, %d)", s.Hosts, s.Guests, s.Audience)
	}
	if s.Hosts+s.Guests < 1 {
		bad("hosts + guests = %d per room: nothing would be sent; give each room at least one publisher", s.Hosts+s.Guests)
	}
	if s.Hosts+s.Guests > maxSeats {
		bad("%d publishers per room: more than any relay's seats; the relay's default is 9 (-seats)", s.Hosts+s.Guests)
	}
	if s.SinkAudience < 0 {
		bad("sink_audience = %d: must not be negative", s.SinkAudience)
	}
	if s.SinkAudience > 0 && !sinkSupported {
		bad("sink_audience = %d: sink listeners filter their sockets with Linux's SO_ATTACH_FILTER; run on Linux or set 0", s.SinkAudience)
	}
	if s.SinkAudience > 0 && (s.ChurnPerMin > 0 || s.MicCycleEvery.D() > 0) {
		bad("sink_audience with churn or mic cycling: a sink hears nothing, so it can neither be churned nor take the mic; set churn_per_min and mic_cycle_every to 0")
	}
	if s.SinkAudience > 0 && s.Transport != TransportUDP {
		bad("sink_audience with transport %q: sinks filter UDP media only; use transport %q", s.Transport, TransportUDP)
	}
	if s.Hosts+s.Guests+s.Audience < 2 {
		bad("one participant per room: nobody would receive anything; add audience or a second publisher")
	}
	if n := s.Participants(); n > maxParticipants {
		bad("%d participants in all: more than %d; split the load over several load generators", n, maxParticipants)
	}
	if s.JoinRate <= 0 {
		bad("join_rate = %g: must be positive (joins per second)", s.JoinRate)
	}
	if s.JoinConcurrency < 1 {
		bad("join_concurrency = %d: need at least 1", s.JoinConcurrency)
	}
	if s.JoinTimeout.D() <= 0 || s.Settle.D() < 0 {
		bad("join_timeout must be positive and settle not negative")
	}
	if s.Duration.D() < time.Second || s.Duration.D() > maxDuration {
		bad("duration = %s: between 1s and %s", s.Duration.D(), maxDuration)
	}
	switch s.AudienceListen {
	case ListenTracks:
		if s.MixAudience < 0 || s.MixAudience > s.Audience {
			bad("mix_audience = %d: between 0 and audience (%d): how many of each room's audience take the mix, the rest tracks", s.MixAudience, s.Audience)
		}
	case ListenMix:
		if s.Audience < 1 {
			bad("audience_listen %q with no audience: nobody would listen to the mix; add audience", ListenMix)
		}
		if s.MixAudience != 0 && s.MixAudience != s.Audience {
			bad("audience_listen %q puts all %d audience members on the mix, but mix_audience = %d; for a split use audience_listen %q with mix_audience",
				ListenMix, s.Audience, s.MixAudience, ListenTracks)
		}
	default:
		bad("audience_listen = %q: %q (one track per publisher) or %q (the room's mix)", s.AudienceListen, ListenTracks, ListenMix)
	}
	if !slices.Contains(transports, s.Transport) {
		bad("transport = %q: one of %s (how the audience reaches the relay)", s.Transport, strings.Join(transports, ", "))
	}
	if s.ChurnPerMin < 0 {
		bad("churn_per_min = %g: must not be negative", s.ChurnPerMin)
	}
	if s.ChurnPerMin > 0 && s.Audience < 1 {
		bad("churn_per_min = %g with no audience: churn replaces audience members; add audience or set 0", s.ChurnPerMin)
	}
	if s.MicCycleEvery.D() < 0 || (s.MicCycleEvery.D() > 0 && s.MicCycleEvery.D() < 500*time.Millisecond) {
		bad("mic_cycle_every = %s: 0 (off) or at least 500ms", s.MicCycleEvery.D())
	}
	if s.MicCycleEvery.D() > 0 && s.Hosts < 1 {
		bad("mic cycling needs a host per room to accept the requests; set hosts >= 1 or mic_cycle_every = 0")
	}
	if s.PK && (s.Rooms < 2 || s.Rooms%2 != 0) {
		bad("pk with rooms = %d: rooms are linked in pairs; use an even number, at least 2", s.Rooms)
	}
	if s.PK && s.Hosts < 1 {
		bad("pk needs a host per room to invite and accept; set hosts >= 1")
	}
	if s.MicHold.D() <= 0 {
		bad("mic_hold must be positive")
	}
	if s.MicPub != MicPubEarly && s.MicPub != MicPubAfter {
		bad("mic_pub = %q: %q (negotiate pub with the mic request) or %q (after role_changed, as a version 1 client)", s.MicPub, MicPubEarly, MicPubAfter)
	}
	if d := s.MicAcceptDelay.D(); d < 0 || d > micWait/2 {
		bad("mic_accept_delay = %s: between 0 and %s (a mic guest waits %s for role_changed)", d, micWait/2, micWait)
	}
	if s.LossPct < 0 || s.LossPct >= 100 {
		bad("loss_pct = %g: between 0 and 100 (exclusive)", s.LossPct)
	}
	if s.LossAt != LossNetwork && s.LossAt != LossSender {
		bad("loss_at = %q: %q (lost on the way to the relay, NACK can repair it) or %q (never sent)", s.LossAt, LossNetwork, LossSender)
	}
	if s.LossBurst < 1 {
		bad("loss_burst = %g: at least 1 frame", s.LossBurst)
	}
	if p := s.LossPct / 100; s.LossBurst > 1 && p < 1 && p/(1-p) > s.LossBurst {
		bad("loss_pct %g with loss_burst %g cannot be modelled; lower one of them", s.LossPct, s.LossBurst)
	}
	if s.Jitter.D() < 0 || s.Jitter.D() > 2*time.Second {
		bad("jitter = %s: between 0 and 2s", s.Jitter.D())
	}
	if s.DecodePerRoom < 0 {
		bad("decode_per_room = %d: must not be negative", s.DecodePerRoom)
	}
	if s.AudioLoop.D() < 100*time.Millisecond || s.AudioLoop.D() > time.Minute {
		bad("audio_loop = %s: between 100ms and 1m", s.AudioLoop.D())
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w:\n  %w", ErrBadScenario, errors.Join(errs...))
	}
	return nil
}

// Participants returns how many participants the scenario keeps joined at
// once (mic cycling adds one more per room at times).
func (s Scenario) Participants() int {
	return s.Rooms * (s.Hosts + s.Guests + s.Audience + s.SinkAudience)
}

// MixListeners returns how many of each room's audience ask for the mix.
func (s Scenario) MixListeners() int {
	if s.AudienceListen == ListenMix {
		return s.Audience
	}
	return s.MixAudience
}

// Publishers returns how many publishers the scenario starts.
func (s Scenario) Publishers() int { return s.Rooms * (s.Hosts + s.Guests) }
