package loadtest

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/lianmai/relay/loadtest/report"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches and parses url.
func scrape(ctx context.Context, hc *http.Client, url string) (*report.Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics request: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the Prometheus text exposition format with expfmt's
// parser, the one Prometheus itself uses, and reduces it to what the report
// needs (report.Metrics). Input it cannot parse is an error, not a partial
// scrape: figures from half a page would be wrong without saying so.
func parseMetrics(r io.Reader) (*report.Metrics, error) {
	// UTF-8 validation accepts every name the relay's client_golang may
	// write; the zero TextParser has no scheme and rejects them all.
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	m := &report.Metrics{Values: make(map[string]float64), Buckets: make(map[string][]report.Bucket)}
	for name, mf := range families {
		for _, s := range mf.GetMetric() {
			addSample(m, name, mf.GetType(), s)
		}
	}
	for _, b := range m.Buckets {
		slices.SortFunc(b, func(x, y report.Bucket) int { return cmp.Compare(x.UpperBound, y.UpperBound) })
	}
	return m, nil
}

// addSample adds one metric of family name to m under the names its
// text-format lines carry (name_bucket, name_sum and name_count for a
// histogram), so that a name means what it meant on the page.
func addSample(m *report.Metrics, name string, typ dto.MetricType, s *dto.Metric) {
	switch typ {
	case dto.MetricType_COUNTER:
		addValue(m, name, s.GetCounter().GetValue(), s)
	case dto.MetricType_GAUGE:
		addValue(m, name, s.GetGauge().GetValue(), s)
	case dto.MetricType_UNTYPED:
		addValue(m, name, s.GetUntyped().GetValue(), s)
	case dto.MetricType_SUMMARY:
		sum := s.GetSummary()
		for _, q := range sum.GetQuantile() {
			m.Values[name] += q.GetValue()
		}
		if sum.SampleSum != nil {
			m.Values[name+"_sum"] += sum.GetSampleSum()
		}
		if sum.SampleCount != nil {
			m.Values[name+"_count"] += float64(sum.GetSampleCount())
		}
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		h := s.GetHistogram()
		for _, b := range h.GetBucket() {
			c := b.GetCumulativeCountFloat()
			if b.CumulativeCountFloat == nil {
				c = float64(b.GetCumulativeCount())
			}
			m.Values[name+"_bucket"] += c
			addBucket(m, name, b.GetUpperBound(), c)
		}
		if h.SampleSum != nil {
			m.Values[name+"_sum"] += h.GetSampleSum()
		}
		if h.SampleCountFloat != nil {
			m.Values[name+"_count"] += h.GetSampleCountFloat()
		} else if h.SampleCount != nil {
			m.Values[name+"_count"] += float64(h.GetSampleCount())
		}
	}
}

// addValue adds a counter's, gauge's or untyped metric's value. A
// name_bucket line without a histogram TYPE line (expfmt parses it as
// untyped) is still a bucket of histogram name.
func addValue(m *report.Metrics, name string, v float64, s *dto.Metric) {
	m.Values[name] += v
	addClusterLabels(m, name, v, s)
	base, ok := strings.CutSuffix(name, "_bucket")
	if !ok {
		return
	}
	for _, l := range s.GetLabel() {
		if l.GetName() != model.BucketLabel {
			continue
		}
		if le, err := strconv.ParseFloat(l.GetValue(), 64); err == nil {
			addBucket(m, base, le, v)
		}
	}
}

// addBucket adds count to histogram name's bucket le: the label sets of a
// histogram are summed, as its values are.
func addBucket(m *report.Metrics, name string, le, count float64) {
	b := m.Buckets[name]
	for i := range b {
		if b[i].UpperBound == le {
			b[i].Count += count
			return
		}
	}
	m.Buckets[name] = append(b, report.Bucket{UpperBound: le, Count: count})
}
