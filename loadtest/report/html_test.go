package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// TestWriteHTML checks that the report renders, is self-contained and its
// charts are well-formed SVG.
func TestWriteHTML(t *testing.T) {
	rep := &Report{Scenario: json.RawMessage(`{"name":"ci","description":"2 rooms <&> tiny","rooms":2,"hosts":1,"guests":1,"audience":5,"duration":"4s"}`)}
	rep.Charts.JoinCDF = [][2]float64{{10, 0.5}, {20, 1}}
	rep.Charts.OneWayCDF = [][2]float64{{0.4, 0.2}, {0.9, 0.99}, {3, 1}}
	rep.Series = []Sample{{T: 1, RecvPPS: 100, RelayCPUPct: 10}, {T: 2, RecvPPS: 200, RelayCPUPct: 12}}
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, bad := range []string{"<script", "http://", "https://"} {
		if i := strings.Index(page, bad); i >= 0 && !strings.Contains(page[i:i+60], "www.w3.org/2000/svg") {
			t.Fatalf("the page has %q: not self-contained", bad)
		}
	}
	if n := strings.Count(page, "<svg"); n != 4 {
		t.Fatalf("%d charts, want 4", n)
	}
	if strings.Contains(page, "mix: arrival after due") || strings.Contains(page, "listeners asked") || !strings.Contains(page, "tracks (one per publisher)") {
		t.Fatal("a run without the mix has mix rows, or the class table has no tracks row")
	}
	rep.Audio.Mix.Streams, rep.Audio.Mix.Listeners = 2, 2
	buf.Reset()
	if err := rep.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "mix: arrival after due") || !strings.Contains(buf.String(), "mix (2 listeners asked)") {
		t.Fatal("the mix's rows are missing from the page")
	}
	for rest := page; ; {
		i := strings.Index(rest, "<svg")
		if i < 0 {
			break
		}
		j := strings.Index(rest[i:], "</svg>") + i + len("</svg>")
		dec := xml.NewDecoder(strings.NewReader(rest[i:j]))
		for {
			if _, err := dec.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("chart is not well-formed: %v", err)
			}
		}
		rest = rest[j:]
	}
}
