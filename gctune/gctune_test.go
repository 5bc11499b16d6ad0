package gctune

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

// keepRuntimeSettings restores GOGC and the memory limit after the test,
// since Apply changes process-wide state.
func keepRuntimeSettings(t *testing.T) {
	t.Helper()
	gogc := debug.SetGCPercent(100)
	debug.SetGCPercent(gogc)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(gogc)
		debug.SetMemoryLimit(limit)
	})
}

func TestApply(t *testing.T) {
	const cg = int64(1000000000)
	tests := []struct {
		name   string
		cfg    Config
		env    map[string]string
		cgroup string // memory.max in the fake root; "" writes none
		want   Applied
	}{
		{
			name:   "flag",
			cfg:    Config{GOGC: 50, MemoryLimit: 256 << 20},
			env:    map[string]string{"GOGC": "300", "GOMEMLIMIT": "1GiB"},
			cgroup: "1000000000",
			want:   Applied{GOGC: 50, GOGCSource: "flag", MemoryLimit: 256 << 20, MemoryLimitSource: "flag", CgroupLimit: cg},
		},
		{
			name: "flag off with flag limit",
			cfg:  Config{GOGC: -1, MemoryLimit: 64 << 20},
			want: Applied{GOGC: -1, GOGCSource: "flag", MemoryLimit: 64 << 20, MemoryLimitSource: "flag"},
		},
		{
			name:   "flag no limit overrides env and cgroup",
			cfg:    Config{GOGC: 200, MemoryLimit: -1},
			env:    map[string]string{"GOMEMLIMIT": "1GiB"},
			cgroup: "1000000000",
			want:   Applied{GOGC: 200, GOGCSource: "flag", MemoryLimit: math.MaxInt64, MemoryLimitSource: "flag", CgroupLimit: cg},
		},
		{
			name:   "env",
			env:    map[string]string{"GOGC": "300", "GOMEMLIMIT": "512MiB"},
			cgroup: "1000000000",
			want:   Applied{GOGC: 300, GOGCSource: "env GOGC", MemoryLimit: 512 << 20, MemoryLimitSource: "env GOMEMLIMIT", CgroupLimit: cg},
		},
		{
			name: "env off",
			env:  map[string]string{"GOGC": "off", "GOMEMLIMIT": "100MiB"},
			want: Applied{GOGC: -1, GOGCSource: "env GOGC", MemoryLimit: 100 << 20, MemoryLimitSource: "env GOMEMLIMIT"},
		},
		{
			name:   "cgroup",
			cgroup: "1000000000",
			want:   Applied{GOGC: DefaultGOGC, GOGCSource: "default", MemoryLimit: 900000000, MemoryLimitSource: "cgroup (90% of 1000000000)", CgroupLimit: cg},
		},
		{
			name:   "none",
			cgroup: "max",
			want:   Applied{GOGC: DefaultGOGC, GOGCSource: "default", MemoryLimit: math.MaxInt64, MemoryLimitSource: "none"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keepRuntimeSettings(t)
			t.Setenv("GOGC", tc.env["GOGC"])
			t.Setenv("GOMEMLIMIT", tc.env["GOMEMLIMIT"])
			root := t.TempDir()
			if tc.cgroup != "" {
				writeTree(t, root, map[string]string{"memory.max": tc.cgroup + "\n"})
			}
			tc.cfg.CgroupRoot = root
			var logs bytes.Buffer
			got, err := Apply(tc.cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if got != tc.want {
				t.Fatalf("Apply = %+v\nwant    %+v", got, tc.want)
			}
			if g := debug.SetGCPercent(100); g != tc.want.GOGC {
				t.Errorf("runtime GOGC = %d, want %d", g, tc.want.GOGC)
			}
			if l := debug.SetMemoryLimit(-1); l != tc.want.MemoryLimit {
				t.Errorf("runtime memory limit = %d, want %d", l, tc.want.MemoryLimit)
			}
			if !strings.Contains(logs.String(), "gogc_source=") || !strings.Contains(logs.String(), "memory_limit_source=") {
				t.Errorf("log line lacks sources: %s", logs.String())
			}
		})
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		env  map[string]string
		want error
	}{
		{"bad flag GOGC", Config{GOGC: -2}, nil, ErrBadGOGC},
		{"bad env GOGC", Config{}, map[string]string{"GOGC": "lots"}, ErrBadGOGC},
		{"bad env GOMEMLIMIT", Config{}, map[string]string{"GOMEMLIMIT": "1 potato"}, ErrBadSize},
		{"off without limit", Config{GOGC: -1, MemoryLimit: -1}, nil, ErrGCOffWithoutLimit},
		{"env off without limit", Config{}, map[string]string{"GOGC": "off"}, ErrGCOffWithoutLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keepRuntimeSettings(t)
			t.Setenv("GOGC", tc.env["GOGC"])
			t.Setenv("GOMEMLIMIT", tc.env["GOMEMLIMIT"])
			tc.cfg.CgroupRoot = t.TempDir()
			before := debug.SetGCPercent(123)
			debug.SetGCPercent(before)
			_, err := Apply(tc.cfg, slog.New(slog.DiscardHandler))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Apply error = %v, want %v", err, tc.want)
			}
			if after := debug.SetGCPercent(before); after != before {
				t.Errorf("failed Apply changed GOGC from %d to %d", before, after)
			}
		})
	}
}
