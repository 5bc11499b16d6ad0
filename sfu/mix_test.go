package sfu

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/lianmai/relay/bufpool"
	"github.com/lianmai/relay/media"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestListenValidation: a bad listen choice is refused by New (the
// relay's default) and by Join (before any room is made).
func TestListenValidation(t *testing.T) {
	if _, err := New(Config{AudienceListen: "both", Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Error("New accepted AudienceListen \"both\"")
	}
	s := newLoopbackSFU(t, time.Second)
	_, err := s.Join(JoinParams{Room: "r", Name: "n", Role: RoleAudience, Sink: newEventSink(), Listen: "both"})
	if !errors.Is(err, ErrBadRequest) {
		t.Errorf("Join with listen \"both\": %v, want ErrBadRequest", err)
	}
	s.mu.Lock()
	rooms := len(s.rooms)
	s.mu.Unlock()
	if rooms != 0 {
		t.Errorf("%d rooms after a refused join, want 0", rooms)
	}
}

// idleMixer is a mixer that mixes nothing: enough for the room's
// bookkeeping, which is what this file tests (the signaling tests drive
// real peers through relaytest's pass-through double).
type idleMixer struct{ inputs, closed int }

type idleInput struct{}

func (m *idleMixer) AddInput() MixInput           { m.inputs++; return idleInput{} }
func (m *idleMixer) RemoveInput(MixInput)         { m.inputs-- }
func (m *idleMixer) Close()                       { m.closed++ }
func (idleInput) WriteRTP(uint16, uint32, []byte) {}
func (idleInput) SetMuted(bool)                   {}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestMixStartFailure: a mixer that fails to start is counted, and the mix
// listener receives the publishers' tracks meanwhile; the next change (a
// new track) starts it, and the listener then receives the mix alone.
func TestMixStartFailure(t *testing.T) {
	s := newLoopbackSFU(t, time.Second)
	var mixer *idleMixer
	fail := true
	s.cfg.NewMixer = func(func(*bufpool.Packet, int)) (Mixer, error) {
		if fail {
			return nil, errors.New("no encoder")
		}
		mixer = &idleMixer{}
		return mixer, nil
	}
	host, err := s.Join(JoinParams{Room: "r", Name: "h", Role: RoleHost, Sink: newEventSink()})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := s.Join(JoinParams{Room: "r", Name: "l", Role: RoleAudience, Sink: newEventSink(), Listen: ListenMix})
	if err != nil {
		t.Fatal(err)
	}
	track := func() *media.UpTrack {
		return media.NewUpTrack(media.UpTrackParams{ID: newID("t_"), Kind: "audio", StreamID: host.id, Metrics: s.cfg.Metrics.Media})
	}
	r := host.room
	first := track()
	if !r.publish(host, first) {
		t.Fatal("publish refused")
	}
	if got := counterValue(t, s.cfg.Metrics.MixStartErrors); got != 1 {
		t.Errorf("mix start errors %v, want 1", got)
	}
	want, _ := r.tracksFor(lis)
	if _, ok := want[first]; !ok || len(want) != 1 {
		t.Errorf("without a mix, the mix listener gets %d tracks (the host's: %v), want the host's", len(want), ok)
	}

	fail = false
	second := track()
	if !r.publish(host, second) {
		t.Fatal("publish refused")
	}
	if mixer == nil || mixer.inputs != 2 {
		t.Fatalf("mixer %+v: want started with both tracks as inputs", mixer)
	}
	want, _ = r.tracksFor(lis)
	r.mu.Lock()
	mixUp := r.mix.up
	r.mu.Unlock()
	if _, ok := want[mixUp]; !ok || len(want) != 1 {
		t.Errorf("with the mix running, the listener gets %d tracks (the mix: %v), want the mix alone", len(want), ok)
	}
	r.unpublish(host, first)
	r.unpublish(host, second)
	if mixer.inputs != 0 || mixer.closed != 1 {
		t.Errorf("after the last track: %d inputs, closed %d times; want 0 and once", mixer.inputs, mixer.closed)
	}
}
