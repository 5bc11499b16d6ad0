//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || s390x)

package main

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestMain lets the test binary be the command: run with SENDFLOOR_MAIN=1
// (inherited by the two processes the command starts) it is sendfloor.
func TestMain(m *testing.M) {
	if os.Getenv("SENDFLOOR_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// command is sendfloor with args, as the test binary.
func command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "SENDFLOOR_MAIN=1")
	return cmd
}

// TestSendfloor runs the command for a short window: the sender fans each
// of the drain's datagrams out to every listener, and reports a datagram
// rate near listeners × rate and a CPU cost per datagram.
func TestSendfloor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a deadline
	defer cancel()
	cmd := command(ctx, "-listeners", "20", "-rate", "100", "-warmup", "300ms", "-window", "1s")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sendfloor: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`: (\d+) datagrams/s over`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no rate in the report:\n%s", out)
	}
	// 20 listeners × 100 packets/s; the drain's ticker may be late on a
	// loaded machine, never early.
	if rate, _ := strconv.Atoi(string(m[1])); rate < 1000 || rate > 2100 {
		t.Errorf("%d datagrams/s, want about 2000\n%s", rate, out)
	}
	c := regexp.MustCompile(`CPU per datagram: ([\d.]+) µs .*refused datagrams: 0\n`).FindSubmatch(out)
	if c == nil {
		t.Fatalf("no CPU figure, or refused datagrams, in the report:\n%s", out)
	}
	if us, _ := strconv.ParseFloat(string(c[1]), 64); us <= 0 {
		t.Errorf("CPU per datagram %s µs: the sender's CPU was not measured\n%s", c[1], out)
	}
}

// TestSendfloorBadFlags: out-of-range settings are refused with the range.
func TestSendfloorBadFlags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a deadline
	defer cancel()
	for _, args := range [][]string{{"-listeners", "0"}, {"-payload", "2000"}, {"-role", "nope"}} {
		out, err := command(ctx, args...).CombinedOutput()
		if err == nil {
			t.Errorf("%v: accepted", args)
			continue
		}
		if !regexp.MustCompile(`sendfloor: (want 1 ≤ -listeners|-role "nope")`).Match(out) {
			t.Errorf("%v: %q does not say what is wanted", args, out)
		}
	}
}
