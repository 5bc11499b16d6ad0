package loadtest

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func TestFrameLogSearch(t *testing.T) {
	l := newFrameLog("p", 0, 0, 0, 10)
	for k := int64(0); k < 5; k++ {
		l.stamp(k, 100+k*10, k == 2)
	}
	tests := []struct {
		name string
		got  int64
		want int64
	}{
		{"first at or after the first", l.firstAtOrAfter(100), 0},
		{"first at or after, between", l.firstAtOrAfter(105), 1},
		{"first after all", l.firstAtOrAfter(1000), 5},
		{"last at or before, exact", l.lastAtOrBefore(120), 2},
		{"last at or before, between", l.lastAtOrBefore(135), 3},
		{"last before all", l.lastAtOrBefore(50), -1},
		{"dropped in range", l.droppedIn(0, 4), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %d, want %d", tt.got, tt.want)
			}
		})
	}
	if l.stamp(10, 1, false) {
		t.Fatal("stamp past the end succeeded")
	}
	if _, _, ok := l.sent(7); ok {
		t.Fatal("an unstamped frame reads as sent")
	}
}

// TestWriteHTML checks that the report renders, is self-contained and its
// charts are well-formed SVG.
func TestWriteHTML(t *testing.T) {
	rep := &Report{Scenario: ciScenario(t).WithDefaults()}
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

func TestChurnNameStaysShort(t *testing.T) {
	name := "a11"
	for n := 1; n <= 10000; n++ {
		name = churnName(name, n)
	}
	if name != "a11-c10000" {
		t.Fatalf("after 10,000 replacements the name is %q, want a11-c10000", name)
	}
}
