package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lianmai/relay/loadtest/report"
)

// costReport writes a report of scenario sc (JSON) with the relay at cpu %
// of a core and pkts packets out per second, and returns its path.
func costReport(t *testing.T, dir, sc string, i int, cpu, pkts float64, mixReceivers int) string {
	t.Helper()
	var name struct{ Name string }
	if err := json.Unmarshal([]byte(sc), &name); err != nil {
		t.Fatal(err)
	}
	rep := report.Report{Scenario: json.RawMessage(sc)}
	rep.Relay.CPUSource, rep.Relay.CPUPct, rep.Relay.PacketsOutPerSec = "proc", cpu, pkts
	rep.Audio.Mix.Receivers = mixReceivers
	data, err := json.Marshal(&rep)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, fmt.Sprintf("%s-%d.json", name.Name, i))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	pubs9   = `{"name":"pubs9","rooms":1,"hosts":2,"guests":7,"audience":0}`
	mix9    = `{"name":"mix9","rooms":1,"hosts":2,"guests":7,"audience":30,"audience_listen":"mix"}`
	tracks9 = `{"name":"tracks9","rooms":1,"hosts":2,"guests":7,"audience":30,"audience_listen":"tracks"}`
	split9  = `{"name":"split9","rooms":1,"hosts":2,"guests":7,"audience":30,"audience_listen":"tracks","mix_audience":10}`
	other   = `{"name":"headline","rooms":1,"hosts":1,"guests":1,"audience":50}`
)

func TestListenCost(t *testing.T) {
	dir := t.TempDir()
	var base, mix, tracks []string
	// Baseline median 10%; mix median 16% (0.2% per listener), tracks
	// median 55% (1.5% per listener): 7.5x.
	for i, c := range []float64{9, 10, 12} {
		base = append(base, costReport(t, dir, pubs9, i, c, 7200, 0))
	}
	for i, c := range []float64{15, 16, 19} {
		mix = append(mix, costReport(t, dir, mix9, i, c, 10200, 30))
	}
	for i, c := range []float64{52, 55, 58} {
		tracks = append(tracks, costReport(t, dir, tracks9, i, c, 34200, 0))
	}
	noMix := costReport(t, dir, mix9, 9, 15, 10200, 0)
	split := costReport(t, dir, split9, 0, 30, 16000, 10)
	headline := costReport(t, dir, other, 0, 20, 10000, 0)
	noCPU := filepath.Join(dir, "nocpu.json")
	if err := os.WriteFile(noCPU, []byte(`{"scenario":{"name":"tracks9","rooms":1,"hosts":2,"guests":7,"audience":30}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	all := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name string
		args []string
		want []string // in the output, in order
		err  string
	}{
		{name: "mix against tracks", args: all(mix, base, tracks), want: []string{
			"over pubs9 (1 room(s) x (2 host + 7 guest), no audience; 3 run(s)): relay CPU 10% of a core, 7200 packets out/s",
			"mix9", "mix", "30", "0.200", "0.167", "0.300", "100",
			"tracks9", "tracks", "1.50", "1.40", "1.60", "900",
			"costs the relay 7.50x the CPU of a listener on the mix (9.00x the packets)"}},
		{name: "other shapes and splits are left out, with a note", args: all(base, mix, []string{split, headline}), want: []string{
			"mix9", "note: split9: not compared, its audience is split", "note: headline: not compared, its rooms are not the baseline's"}},
		{name: "a run without the mix is flagged", args: all(base, []string{noMix}), want: []string{
			"note: mix9: in some run no listener received the mix"}},
		{name: "baseline by name", args: append([]string{"-base", "pubs9"}, all(base, tracks)...), want: []string{"tracks9"}},
		{name: "no baseline", args: all(mix, tracks), err: "no baseline among the reports"},
		{name: "baseline with audience", args: append([]string{"-base", "mix9"}, all(mix, tracks)...), err: "has audience"},
		{name: "no relay CPU", args: all(base, []string{noCPU}), err: "has no relay CPU"},
		{name: "nothing", args: nil, err: "name the JSON reports"},
		{name: "not a report", args: []string{filepath.Join(dir, "none.json")}, err: "none.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, stderr strings.Builder
			err := listencost(tt.args, &out, &stderr)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("listencost: %v, want an error about %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rest := out.String()
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", w, out.String())
				}
				rest = rest[i+len(w):]
			}
		})
	}
}
