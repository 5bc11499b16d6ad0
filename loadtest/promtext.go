package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// promSnapshot is one scrape of the relay's /metrics (Prometheus text
// format), reduced to what the report uses: every sample summed over its
// labels by metric name, and histogram buckets by metric name.
type promSnapshot struct {
	values  map[string]float64      // name -> sum over label sets
	buckets map[string][]promBucket // histogram name (without _bucket) -> cumulative buckets, by le
}

type promBucket struct {
	le    float64 // upper bound, +Inf for the last
	count float64 // cumulative
}

// value returns the sum of a metric's samples and whether it was present.
func (s *promSnapshot) value(name string) (float64, bool) {
	if s == nil {
		return 0, false
	}
	v, ok := s.values[name]
	return v, ok
}

// parseProm reads the Prometheus text exposition format. It keeps only
// what it understands (name{labels} value) and skips the rest.
func parseProm(r io.Reader) (*promSnapshot, error) {
	s := &promSnapshot{values: make(map[string]float64), buckets: make(map[string][]promBucket)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, rest := line, "", ""
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			name, labels, rest = line[:i], line[i+1:j], line[j+1:]
		} else if i := strings.IndexAny(line, " \t"); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		s.values[name] += v
		if base, ok := strings.CutSuffix(name, "_bucket"); ok {
			if le, ok := labelValue(labels, "le"); ok {
				bound, err := strconv.ParseFloat(le, 64)
				if err == nil {
					s.buckets[base] = append(s.buckets[base], promBucket{le: bound, count: v})
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	for name, b := range s.buckets {
		slices.SortFunc(b, func(x, y promBucket) int {
			switch {
			case x.le < y.le:
				return -1
			case x.le > y.le:
				return 1
			}
			return 0
		})
		s.buckets[name] = b
	}
	return s, nil
}

// labelValue finds name="value" in a label list.
func labelValue(labels, name string) (string, bool) {
	for _, part := range strings.Split(labels, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && k == name {
			return strings.Trim(v, `"`), true
		}
	}
	return "", false
}

// bucketDelta returns histogram name's cumulative buckets in b minus a
// (a may be nil: since the process started).
func bucketDelta(a, b *promSnapshot, name string) []promBucket {
	if b == nil {
		return nil
	}
	out := slices.Clone(b.buckets[name])
	if a == nil {
		return out
	}
	prev := a.buckets[name]
	for i := range out {
		for _, p := range prev {
			if p.le == out[i].le {
				out[i].count -= p.count
			}
		}
	}
	return out
}

// bucketQuantile returns the nearest-rank q-quantile of cumulative
// buckets as the upper bound of the bucket that holds it (seconds), and
// the count. A quantile in the +Inf bucket returns the largest finite
// bound (a lower bound of the truth).
func bucketQuantile(b []promBucket, q float64) (float64, float64) {
	if len(b) == 0 {
		return 0, 0
	}
	total := b[len(b)-1].count
	if total <= 0 {
		return 0, 0
	}
	rank := math.Ceil(q*total - 1e-9)
	for i, x := range b {
		if x.count >= rank {
			if math.IsInf(x.le, 1) && i > 0 {
				return b[i-1].le, total
			}
			return x.le, total
		}
	}
	return b[len(b)-1].le, total
}

// scrape fetches and parses url.
func scrape(ctx context.Context, hc *http.Client, url string) (*promSnapshot, error) {
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
	return parseProm(resp.Body)
}
