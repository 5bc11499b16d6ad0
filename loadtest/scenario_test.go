package loadtest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := Scenario{Rooms: 1, Hosts: 1, Guests: 1, Audience: 10}
	tests := []struct {
		name   string
		change func(*Scenario)
		want   string // in the error; "" for valid
	}{
		{"valid", func(*Scenario) {}, ""},
		{"no publishers", func(s *Scenario) { s.Hosts, s.Guests = 0, 0 }, "nothing would be sent"},
		{"alone", func(s *Scenario) { s.Guests, s.Audience = 0, 0 }, "nobody would receive"},
		{"negative audience", func(s *Scenario) { s.Audience = -1 }, "must not be negative"},
		{"too many seats", func(s *Scenario) { s.Guests = 70 }, "seats"},
		{"too many participants", func(s *Scenario) { s.Rooms, s.Audience = 100, 500 }, "load generators"},
		{"negative join rate", func(s *Scenario) { s.JoinRate = -1 }, "join_rate"},
		{"short duration", func(s *Scenario) { s.Duration = Duration(time.Millisecond) }, "duration"},
		{"certain loss", func(s *Scenario) { s.LossPct = 100 }, "loss_pct"},
		{"impossible burst", func(s *Scenario) { s.LossPct, s.LossBurst = 80, 2 }, "cannot be modelled"},
		{"churn without audience", func(s *Scenario) { s.Audience, s.ChurnPerMin = 0, 5 }, "churn"},
		{"mic without host", func(s *Scenario) { s.Hosts, s.Guests, s.MicCycleEvery = 0, 2, Duration(time.Second) }, "host"},
		{"mic pub after role_changed", func(s *Scenario) { s.MicPub = MicPubAfter }, ""},
		{"unknown mic pub", func(s *Scenario) { s.MicPub = "never" }, `mic_pub = "never"`},
		{"host decides", func(s *Scenario) { s.MicAcceptDelay = Duration(300 * time.Millisecond) }, ""},
		{"host decides too long", func(s *Scenario) { s.MicAcceptDelay = Duration(3 * time.Second) }, "mic_accept_delay"},
		{"negative decision", func(s *Scenario) { s.MicAcceptDelay = Duration(-time.Second) }, "mic_accept_delay"},
		{"huge jitter", func(s *Scenario) { s.Jitter = Duration(time.Minute) }, "jitter"},
		{"loss nowhere", func(s *Scenario) { s.LossPct, s.LossAt = 5, "air" }, "loss_at"},
		{"loss at the sender", func(s *Scenario) { s.LossPct, s.LossAt = 5, LossSender }, ""},
		{"all on the mix", func(s *Scenario) { s.AudienceListen = ListenMix }, ""},
		{"all on the mix, counted", func(s *Scenario) { s.AudienceListen, s.MixAudience = ListenMix, 10 }, ""},
		{"split between mix and tracks", func(s *Scenario) { s.MixAudience = 4 }, ""},
		{"unknown listen", func(s *Scenario) { s.AudienceListen = "both" }, `audience_listen = "both"`},
		{"mix without audience", func(s *Scenario) { s.AudienceListen, s.Audience = ListenMix, 0 }, "nobody would listen to the mix"},
		{"mix with a split", func(s *Scenario) { s.AudienceListen, s.MixAudience = ListenMix, 3 }, "for a split"},
		{"split beyond the audience", func(s *Scenario) { s.MixAudience = 11 }, "mix_audience = 11"},
		{"negative split", func(s *Scenario) { s.MixAudience = -1 }, "mix_audience = -1"},
		{"ICE-TCP", func(s *Scenario) { s.Transport = TransportTCP }, ""},
		{"TURN over TLS", func(s *Scenario) { s.Transport = TransportTURNTLS }, ""},
		{"unknown transport", func(s *Scenario) { s.Transport = "quic" }, `transport = "quic"`},
		{"pk in pairs", func(s *Scenario) { s.PK, s.Rooms = true, 2 }, ""},
		{"pk with one room", func(s *Scenario) { s.PK = true }, "rooms are linked in pairs"},
		{"pk with an odd number of rooms", func(s *Scenario) { s.PK, s.Rooms = true, 3 }, "rooms are linked in pairs"},
		{"pk without hosts", func(s *Scenario) { s.PK, s.Rooms, s.Hosts, s.Guests = true, 2, 0, 2 }, "pk needs a host"},
		{"sinks", func(s *Scenario) { s.SinkAudience = 100 }, ""},
		{"negative sinks", func(s *Scenario) { s.SinkAudience = -1 }, "sink_audience = -1"},
		{"sinks with churn", func(s *Scenario) { s.SinkAudience, s.ChurnPerMin = 10, 5 }, "sink hears nothing"},
		{"sinks over ICE-TCP", func(s *Scenario) { s.SinkAudience, s.Transport = 10, TransportTCP }, "sinks filter UDP media only"},
		{"sinks count as participants", func(s *Scenario) { s.Rooms, s.SinkAudience = 2, maxParticipants/2 }, "load generators"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.change(&s)
			err := s.WithDefaults().Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrBadScenario)):
				t.Fatalf("Validate: %v, want ErrBadScenario mentioning %q", err, tt.want)
			}
		})
	}
}

func TestLoadScenario(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("fields and durations", func(t *testing.T) {
		s, err := LoadScenario(write("a.json", `{"rooms": 3, "hosts": 2, "audience": 7, "duration": "1m30s", "settle": 2.5, "jitter": "20ms"}`))
		if err != nil {
			t.Fatal(err)
		}
		if s.Name != "a" || s.Rooms != 3 || s.Hosts != 2 || s.Audience != 7 ||
			s.Duration.D() != 90*time.Second || s.Settle.D() != 2500*time.Millisecond || s.Jitter.D() != 20*time.Millisecond {
			t.Fatalf("loaded %+v", s)
		}
	})
	t.Run("unknown field", func(t *testing.T) {
		if _, err := LoadScenario(write("b.json", `{"romos": 3}`)); err == nil || !strings.Contains(err.Error(), "romos") {
			t.Fatalf("LoadScenario with a typo: %v", err)
		}
	})
	t.Run("bad duration", func(t *testing.T) {
		if _, err := LoadScenario(write("c.json", `{"duration": "soon"}`)); err == nil {
			t.Fatal("LoadScenario accepted duration \"soon\"")
		}
	})
	t.Run("missing file", func(t *testing.T) {
		if _, err := LoadScenario(filepath.Join(dir, "none.json")); err == nil {
			t.Fatal("LoadScenario of a missing file succeeded")
		}
	})
	t.Run("round trip", func(t *testing.T) {
		in := ciScenario(t).WithDefaults()
		data, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := LoadScenario(write("d.json", string(data)))
		if err != nil {
			t.Fatal(err)
		}
		if out.Duration != in.Duration || out.Rooms != in.Rooms || *out.NACK != *in.NACK {
			t.Fatalf("round trip changed the scenario: %+v", out)
		}
	})
}

// TestShippedScenarios checks that every scenario file in scenarios/ loads
// and is valid, and that the benchmark's (loadtest/bench.sh) do not depend
// on mic cycling or injected loss.
func TestShippedScenarios(t *testing.T) {
	files, err := filepath.Glob("scenarios/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := LoadScenario(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.WithDefaults().Validate(); err != nil {
				t.Fatal(err)
			}
			bench := map[string]bool{"headline": true, "costreaming": true, "mix": true, "pubs9": true, "mix9": true, "tracks9": true, "cluster": true}
			if bench[s.Name] && (s.MicCycleEvery != 0 || s.LossPct != 0 || s.ChurnPerMin != 0) {
				t.Fatal("a benchmark scenario uses mic cycling, churn or injected loss: its figures must compare across relays and runs")
			}
		})
	}
}

// TestListenCostScenarios checks that the scenarios loadtest listencost
// compares differ only in their audience: the same rooms, publishers,
// voices and window, the baseline without audience, mix9 all on the mix,
// tracks9 all on tracks, as many listeners each.
func TestListenCostScenarios(t *testing.T) {
	load := func(name string) Scenario {
		s, err := LoadScenario("scenarios/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		return s.WithDefaults()
	}
	base, mix, tracks := load("pubs9"), load("mix9"), load("tracks9")
	if base.Audience != 0 || base.Hosts+base.Guests != 9 {
		t.Fatalf("pubs9: %d audience, %d publishers; want 0 and 9 (the relay's default seats)", base.Audience, base.Hosts+base.Guests)
	}
	if mix.MixListeners() != mix.Audience || tracks.MixListeners() != 0 || mix.Audience != tracks.Audience || mix.Audience == 0 {
		t.Fatalf("mix9 has %d of %d on the mix, tracks9 %d of %d", mix.MixListeners(), mix.Audience, tracks.MixListeners(), tracks.Audience)
	}
	for _, s := range []Scenario{mix, tracks} {
		a, b := s, base
		a.Name, a.Description, a.Audience, a.AudienceListen = b.Name, b.Description, b.Audience, b.AudienceListen
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Fatalf("%s differs from pubs9 in more than its audience:\n%s\n%s", s.Name, ja, jb)
		}
	}
}
