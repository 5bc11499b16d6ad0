package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
)

// WriteHTML writes a self-contained HTML report: the summary, the figures
// and four inline SVG charts (join latency CDF, one-way latency CDF,
// packets per second and CPU over time). It loads nothing from the
// network and runs no script.
func (rep *Report) WriteHTML(w io.Writer) error {
	var recv, relayOut, relayCPU, lgCPU, other [][2]float64
	for _, s := range rep.Series {
		recv = append(recv, [2]float64{s.T, s.RecvPPS})
		relayOut = append(relayOut, [2]float64{s.T, s.RelayOutPPS})
		relayCPU = append(relayCPU, [2]float64{s.T, s.RelayCPUPct})
		lgCPU = append(lgCPU, [2]float64{s.T, s.LoadgenCPUPct})
		other = append(other, [2]float64{s.T, s.OtherCPUPct})
	}
	charts := []chart{
		{Title: "Join latency CDF (dial to first packet of each publisher)", XLabel: "ms (log)", YLabel: "fraction", LogX: true, YMax: 1,
			Lines: []chartLine{{Name: "join", Color: "#1f77b4", Points: rep.Charts.JoinCDF}}},
		{Title: "One-way latency CDF (publisher send to receiver read)", XLabel: "ms (log)", YLabel: "fraction", LogX: true, YMax: 1,
			Lines: []chartLine{{Name: "one-way", Color: "#d62728", Points: rep.Charts.OneWayCDF}}},
		{Title: "Packets per second", XLabel: "seconds since start", YLabel: "packets/s",
			Lines: []chartLine{{Name: "received", Color: "#2ca02c", Points: recv}, {Name: "relay out", Color: "#9467bd", Points: relayOut}}},
		{Title: "CPU, % of one core", XLabel: "seconds since start", YLabel: "%",
			Lines: []chartLine{{Name: "relay", Color: "#ff7f0e", Points: relayCPU}, {Name: "load generator", Color: "#17becf", Points: lgCPU},
				{Name: "other processes", Color: "#7f7f7f", Points: other}}},
	}
	var svgs []template.HTML
	for _, c := range charts {
		svgs = append(svgs, c.svg())
	}
	var summary bytes.Buffer
	if err := rep.WriteSummary(&summary); err != nil {
		return err
	}
	scenario, err := json.MarshalIndent(rep.Scenario, "", "  ")
	if err != nil {
		return fmt.Errorf("scenario: %w", err)
	}
	return htmlPage.Execute(w, map[string]any{
		"R":        rep,
		"Name":     rep.scenarioHead().Name,
		"Charts":   svgs,
		"Summary":  summary.String(),
		"Scenario": string(scenario),
	})
}

var htmlPage = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Lianmai Relay load test: {{.Name}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1360px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
pre{background:#f6f6f6;padding:12px;overflow:auto;font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:16px}
svg{background:#fff;border:1px solid #ddd}
svg .t{font-size:13px;font-weight:600}svg .l{font-size:11px;fill:#444}
svg .g{stroke:#eee}svg .f{fill:none;stroke:#bbb}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}
</style></head><body>
<h1>Lianmai Relay load test: {{.Name}}</h1>
<p>{{.R.StartedAt.Format "2006-01-02 15:04:05 MST"}} · {{.R.Machine.NumCPU}} CPUs ({{.R.Machine.CPUModel}}) · {{.R.Machine.GoVersion}} · relay {{.R.Target.URL}} · window {{.R.WindowSeconds}} s</p>
<h2>Summary</h2>
<pre>{{.Summary}}</pre>
<h2>Charts</h2>
<div class="charts">{{range .Charts}}{{.}}{{end}}</div>
<h2>Latency (ms)</h2>
<table><tr><th>figure</th><th>count</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>
<tr><td>joined (WebSocket)</td><td>{{.R.Joins.JoinedMs.Count}}</td><td>{{.R.Joins.JoinedMs.P50}}</td><td>{{.R.Joins.JoinedMs.P95}}</td><td>{{.R.Joins.JoinedMs.P99}}</td><td>{{.R.Joins.JoinedMs.Max}}</td></tr>
<tr><td>join to first packet</td><td>{{.R.Joins.FirstPacketMs.Count}}</td><td>{{.R.Joins.FirstPacketMs.P50}}</td><td>{{.R.Joins.FirstPacketMs.P95}}</td><td>{{.R.Joins.FirstPacketMs.P99}}</td><td>{{.R.Joins.FirstPacketMs.Max}}</td></tr>
<tr><td>one-way</td><td>{{.R.Audio.OneWayMs.Count}}</td><td>{{.R.Audio.OneWayMs.P50}}</td><td>{{.R.Audio.OneWayMs.P95}}</td><td>{{.R.Audio.OneWayMs.P99}}</td><td>{{.R.Audio.OneWayMs.Max}}</td></tr>
{{with .R.Audio.Mix}}{{if .Streams}}<tr><td>mix: arrival after due (own clock)</td><td>{{.LatenessMs.Count}}</td><td>{{.LatenessMs.P50}}</td><td>{{.LatenessMs.P95}}</td><td>{{.LatenessMs.P99}}</td><td>{{.LatenessMs.Max}}</td></tr>
<tr><td>mix: join to first packet</td><td>{{.FirstPacketMs.Count}}</td><td>{{.FirstPacketMs.P50}}</td><td>{{.FirstPacketMs.P95}}</td><td>{{.FirstPacketMs.P99}}</td><td>{{.FirstPacketMs.Max}}</td></tr>
{{end}}{{end}}<tr><td>pacer lateness</td><td>{{.R.Audio.PacerLateMs.Count}}</td><td>{{.R.Audio.PacerLateMs.P50}}</td><td>{{.R.Audio.PacerLateMs.P95}}</td><td>{{.R.Audio.PacerLateMs.P99}}</td><td>{{.R.Audio.PacerLateMs.Max}}</td></tr>
</table>
<h2>Audio by stream class</h2>
<table><tr><th>class</th><th>receivers</th><th>streams</th><th>packets</th><th>loss %</th><th>late %</th><th>stutter %</th><th>decoded sample stutter %</th></tr>
<tr><td>tracks (one per publisher)</td><td>{{.R.Audio.Receivers}}</td><td>{{.R.Audio.Streams}}</td><td>{{.R.Audio.PacketsReceived}}</td><td>{{.R.Audio.LossPct}}</td><td>{{.R.Audio.LatePct}}</td><td>{{.R.Audio.StutterPct}}</td><td>{{.R.Audio.Decoded.StutterPct}}</td></tr>
{{with .R.Audio.Mix}}{{if or .Listeners .Streams}}<tr><td>mix ({{.Listeners}} listeners asked)</td><td>{{.Receivers}}</td><td>{{.Streams}}</td><td>{{.PacketsReceived}}</td><td>{{.LossPct}}</td><td>{{.LatePct}}</td><td>{{.StutterPct}}</td><td>{{.Decoded.StutterPct}}</td></tr>{{end}}{{end}}
</table>
<h2>Scenario</h2>
<pre>{{.Scenario}}</pre>
<p>Every figure is defined in docs/loadtest.md. The JSON report (-json) holds all of them and the time series.</p>
</body></html>
`))
