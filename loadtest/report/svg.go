package report

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// chartLine is one line of a chart.
type chartLine struct {
	Name   string
	Color  string
	Points [][2]float64
}

// chart is an inline SVG line chart: no scripts, no external resources.
type chart struct {
	Title  string
	XLabel string
	YLabel string
	LogX   bool // a log-scale x axis (latency CDFs)
	YMax   float64
	Lines  []chartLine
}

const (
	chartW, chartH = 640, 300
	padL, padR     = 60, 20
	padT, padB     = 46, 45
)

// svg renders the chart.
func (c chart) svg() template.HTML {
	var xs, ys []float64
	for _, l := range c.Lines {
		for _, p := range l.Points {
			xs = append(xs, p[0])
			ys = append(ys, p[1])
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="18" class="t">%s</text>`, padL, template.HTMLEscapeString(c.Title))
	if len(xs) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="l">no data</text></svg>`, chartW/2-30, chartH/2)
		return template.HTML(b.String())
	}
	x0, x1 := minMax(xs)
	_, y1 := minMax(ys)
	y0 := 0.0
	if c.YMax > 0 {
		y1 = c.YMax
	}
	if y1 <= y0 {
		y1 = y0 + 1
	}
	if c.LogX {
		x0 = math.Max(x0, 1e-3)
		x1 = math.Max(x1, x0*10)
		x0, x1 = math.Pow(10, math.Floor(math.Log10(x0))), math.Pow(10, math.Ceil(math.Log10(x1)))
	} else if x1 <= x0 {
		x1 = x0 + 1
	}
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	px := func(x float64) float64 {
		if c.LogX {
			x = math.Max(x, x0)
			return padL + (math.Log10(x)-math.Log10(x0))/(math.Log10(x1)-math.Log10(x0))*pw
		}
		return padL + (x-x0)/(x1-x0)*pw
	}
	py := func(y float64) float64 { return padT + ph - (math.Min(y, y1)-y0)/(y1-y0)*ph }

	// Axes, grid and tick labels.
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" class="f"/>`, padL, padT, pw, ph)
	for _, t := range ticks(y0, y1, 5) {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="g"/><text x="%d" y="%.1f" class="l" text-anchor="end">%s</text>`,
			padL, chartW-padR, py(t), py(t), padL-6, py(t)+4, fmtTick(t))
	}
	var xt []float64
	if c.LogX {
		for d := x0; d <= x1*1.0001; d *= 10 {
			xt = append(xt, d)
		}
	} else {
		xt = ticks(x0, x1, 6)
	}
	for _, t := range xt {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" class="g"/><text x="%.1f" y="%d" class="l" text-anchor="middle">%s</text>`,
			px(t), px(t), padT, chartH-padB, px(t), chartH-padB+16, fmtTick(t))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%d" class="l" text-anchor="middle">%s</text>`, padL+pw/2, chartH-8, template.HTMLEscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text x="14" y="%.0f" class="l" text-anchor="middle" transform="rotate(-90 14 %.0f)">%s</text>`,
		padT+ph/2, padT+ph/2, template.HTMLEscapeString(c.YLabel))

	// Lines and legend.
	for i, l := range c.Lines {
		if len(l.Points) == 0 {
			continue
		}
		var pts strings.Builder
		for _, p := range l.Points {
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(p[0]), py(p[1]))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`, l.Color, strings.TrimSpace(pts.String()))
		lx := padL + i*150
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="3" fill="%s"/><text x="%d" y="%d" class="l">%s</text>`,
			lx, padT-14, l.Color, lx+16, padT-10, template.HTMLEscapeString(l.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func minMax(v []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return lo, hi
}

// ticks returns about n round values from lo to hi.
func ticks(lo, hi float64, n int) []float64 {
	span := hi - lo
	if span <= 0 || n < 1 {
		return []float64{lo}
	}
	step := math.Pow(10, math.Floor(math.Log10(span/float64(n))))
	for _, m := range []float64{1, 2, 5, 10} {
		if span/(step*m) <= float64(n) {
			step *= m
			break
		}
	}
	var out []float64
	for t := math.Ceil(lo/step) * step; t <= hi+step*1e-9; t += step {
		out = append(out, t)
	}
	return out
}

func fmtTick(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case a == 0 || a >= 1:
		return fmt.Sprintf("%g", math.Round(v*100)/100)
	}
	return fmt.Sprintf("%.3g", v)
}
