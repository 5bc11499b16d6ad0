package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// idlememOptions are `loadtest idlemem`'s settings.
type idlememOptions struct {
	pages int
	idles []time.Duration
}

// idlemem measures what touching memory costs after it sat idle, the way
// the Go GC touches its own bookkeeping (span sets, goroutine records)
// once per cycle. On a host that samples page accesses (DAMON, some
// hypervisors) a page idle for seconds costs tens of times a hot one, and
// that time lands inside the GC's stop-the-world pauses
// (docs/performance.md, "GC pauses under churn").
func idlemem(args []string, stdout, stderr io.Writer) error {
	o, err := parseIdlemem(args, stderr)
	if err != nil {
		return err
	}
	const pageSize = 4096
	buf := make([]byte, o.pages*pageSize)
	// touch writes one byte per page and returns the time per page.
	touch := func() time.Duration {
		t := time.Now()
		for i := 0; i < len(buf); i += pageSize {
			buf[i]++
		}
		return time.Since(t) / time.Duration(o.pages)
	}
	touch()
	fmt.Fprintf(stdout, "first touch of a page (%d pages, %d MiB), after it sat idle:\n", o.pages, o.pages*pageSize>>20)
	fmt.Fprintf(stdout, "  %-8s %s\n", "hot", touch())
	for _, idle := range o.idles {
		touch()
		time.Sleep(idle)
		fmt.Fprintf(stdout, "  %-8s %s\n", idle, touch())
	}
	return nil
}

func parseIdlemem(args []string, stderr io.Writer) (idlememOptions, error) {
	fs := flag.NewFlagSet("loadtest idlemem", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pages := fs.Int("pages", 4096, "pages to touch (4 KiB each)")
	idles := fs.String("idle", "100ms,1s,5s,10s,20s", "comma-separated idle times to measure after")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: loadtest idlemem [-pages N] [-idle 100ms,1s,...]\n\n"+
			"Measures the cost of touching a page of memory after it sat idle; on a host that samples\n"+
			"page accesses (DAMON) it grows with the idle time and lengthens the relay's GC pauses.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return idlememOptions{}, err
	}
	if fs.NArg() > 0 {
		return idlememOptions{}, fmt.Errorf("idlemem: unexpected argument %q", fs.Arg(0))
	}
	if *pages < 1 {
		return idlememOptions{}, fmt.Errorf("idlemem: -pages %d: want at least 1", *pages)
	}
	o := idlememOptions{pages: *pages}
	for s := range strings.SplitSeq(*idles, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d < 0 {
			return idlememOptions{}, fmt.Errorf("idlemem: -idle %q: want durations like 100ms,1s,5s", *idles)
		}
		o.idles = append(o.idles, d)
	}
	return o, nil
}
