// Command loadtest drives synthetic co-streaming participants against a
// Lianmai relay and reports what listeners would feel and what the relay
// spent. Run `loadtest -h` for its flags; docs/loadtest.md has the rest.
// `loadtest summarize REPORT.json...` prints the medians of several runs;
// `loadtest soakcheck REPORT.json` judges a soak run (loadtest/soak.sh);
// `loadtest listencost REPORT.json...` compares what a listener on the
// mix and one on tracks cost the relay;
// `loadtest idlemem` measures what memory costs to touch after it sat idle;
// `loadtest flood` floods the relay's signaling from one address and
// measures what that does to it and to a legitimate client.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/lianmai/relay/loadtest"
	"github.com/lianmai/relay/loadtest/report"
)

// Exit statuses.
const (
	exitOK       = 0
	exitFailed   = 1 // the run could not take place or was cut short
	exitUsage    = 2 // bad flags or scenario
	exitDegraded = 3 // the run finished but joins failed or streams never flowed
)

// loadgenGOGC is the load generator's GC target unless GOGC is set: its
// heap is small and pion allocates per packet, so fewer collections save
// more CPU than the memory they cost.
const loadgenGOGC = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(loadgenGOGC)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command; it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "soakcheck" {
		err := soakcheck(args[1:], stdout, stderr)
		switch {
		case err == nil, isHelp(err):
			return exitOK
		case errors.Is(err, errSoakFailed):
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return exitUsage
	}
	if len(args) > 0 && args[0] == "idlemem" {
		err := idlemem(args[1:], stdout, stderr)
		switch {
		case err == nil, isHelp(err):
			return exitOK
		}
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return exitUsage
	}
	if len(args) > 0 && args[0] == "flood" {
		return flood(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "listencost" {
		err := listencost(args[1:], stdout, stderr)
		switch {
		case err == nil, isHelp(err):
			return exitOK
		}
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return exitUsage
	}
	if len(args) > 0 && args[0] == "summarize" {
		if err := summarize(args[1:], stdout); err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			return exitUsage
		}
		return exitOK
	}
	o, err := parseFlags(args, getenv, stderr)
	if isHelp(err) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return exitUsage
	}
	o.cfg.Logger, o.cfg.ClientLog, o.cfg.Progress = logs(o.logLevel, o.quiet, stderr)
	if o.cpuProf != "" {
		stopProfile, err := startProfile(o.cpuProf)
		if err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			return exitUsage
		}
		defer stopProfile()
	}
	rep, err := loadtest.Run(ctx, o.sc, o.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		if errors.Is(err, loadtest.ErrBadScenario) {
			return exitUsage
		}
		return exitFailed
	}
	if err := rep.WriteSummary(stdout); err != nil {
		fmt.Fprintf(stderr, "loadtest: writing the summary: %v\n", err)
		return exitFailed
	}
	if err := writeReports(rep, o.jsonOut, o.htmlOut); err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return exitFailed
	}
	if rep.Joins.Failed > 0 || rep.Audio.MissingPublishers > 0 || rep.Audio.Mix.MissingListeners > 0 {
		fmt.Fprintf(stderr, "loadtest: %d joins failed, %d (receiver, publisher) pairs never flowed and %d mix listeners never got the mix; see the summary\n",
			rep.Joins.Failed, rep.Audio.MissingPublishers, rep.Audio.Mix.MissingListeners)
		return exitDegraded
	}
	return exitOK
}

// writeReports writes the JSON and HTML reports, where asked.
func writeReports(rep *report.Report, jsonPath, htmlPath string) error {
	if jsonPath != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding the JSON report: %w", err)
		}
		if err := os.WriteFile(jsonPath, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing the JSON report: %w", err)
		}
	}
	if htmlPath != "" {
		f, err := os.Create(htmlPath)
		if err != nil {
			return fmt.Errorf("writing the HTML report: %w", err)
		}
		werr := rep.WriteHTML(f)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("writing the HTML report %s: %w", htmlPath, werr)
		}
	}
	return nil
}

// startProfile starts CPU profiling into path; the returned func stops it.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

// logs are a subcommand's logger, the clients' logger (theirs and pion's,
// only at debug level) and where the progress line goes (nowhere with
// -quiet).
func logs(level slog.Level, quiet bool, stderr io.Writer) (log, clientLog *slog.Logger, progress io.Writer) {
	log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if level <= slog.LevelDebug {
		clientLog = log
	}
	if !quiet {
		progress = stderr
	}
	return log, clientLog, progress
}
