package gctune

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"
)

// DefaultGOGC is the GOGC the relay uses when neither the flag nor the GOGC
// env var says otherwise.
const DefaultGOGC = 100 // measured against 25 and 400: docs/performance.md, "GC against GOGC"

// cgroupShare is the part of the cgroup limit given to GOMEMLIMIT. The rest
// is headroom for memory the Go runtime does not manage but the cgroup
// charges: kernel socket buffers (many for a relay), page cache, cgo.
const cgroupShare = 90

// Config says how to tune the GC; the zero value means "automatic".
type Config struct {
	// GOGC: 0 means the default (the GOGC environment variable if the
	// process has one, else DefaultGOGC); -1 turns the collector off (only
	// sensible with a memory limit); >0 is the percentage.
	GOGC int
	// MemoryLimit in bytes: 0 means automatic (the GOMEMLIMIT environment
	// variable if set; else 90% of the cgroup memory limit when the process
	// has one; else no limit); a negative value means no limit.
	MemoryLimit int64
	// CgroupRoot is where the cgroup filesystem is mounted; "" means
	// /sys/fs/cgroup. For tests.
	CgroupRoot string
}

// Applied is what Apply set, for logging and for the caller.
type Applied struct {
	GOGC              int    // -1 when off
	GOGCSource        string // "flag", "env GOGC", "default"
	MemoryLimit       int64  // math.MaxInt64 when none
	MemoryLimitSource string // "flag", "env GOMEMLIMIT", "cgroup (90% of N)", "none"
	CgroupLimit       int64  // 0 when no cgroup limit was found
}

// Apply sets debug.SetGCPercent and debug.SetMemoryLimit from cfg and logs
// what it applied as one Info line to log (nil means slog.Default()). It
// changes nothing when it returns an error: a bad GOGC or GOMEMLIMIT
// (ErrBadGOGC, ErrBadSize), or GOGC off with no memory limit
// (ErrGCOffWithoutLimit), which would let the heap grow until the process
// is killed.
func Apply(cfg Config, log *slog.Logger) (Applied, error) {
	if log == nil {
		log = slog.Default()
	}
	var a Applied
	var err error
	if a.GOGC, a.GOGCSource, err = resolveGOGC(cfg.GOGC); err != nil {
		return Applied{}, err
	}
	// Read even when the limit comes from elsewhere, to log it and to warn
	// when a configured limit exceeds what the container allows.
	a.CgroupLimit, _ = CgroupMemoryLimit(cfg.CgroupRoot)
	if a.MemoryLimit, a.MemoryLimitSource, err = resolveMemoryLimit(cfg.MemoryLimit, a.CgroupLimit); err != nil {
		return Applied{}, err
	}
	if a.GOGC < 0 && a.MemoryLimit == math.MaxInt64 {
		return Applied{}, fmt.Errorf("%w: GOGC from %s, memory limit from %s", ErrGCOffWithoutLimit, a.GOGCSource, a.MemoryLimitSource)
	}

	// Limit first, so the collector is never off without one in between.
	debug.SetMemoryLimit(a.MemoryLimit)
	debug.SetGCPercent(a.GOGC)

	log.Info("gc tuning applied",
		"gogc", a.GOGC, "gogc_source", a.GOGCSource,
		"memory_limit_bytes", a.MemoryLimit, "memory_limit_source", a.MemoryLimitSource,
		"cgroup_limit_bytes", a.CgroupLimit)
	if a.CgroupLimit > 0 && a.MemoryLimit > a.CgroupLimit {
		log.Warn("memory limit above the cgroup limit; the kernel may OOM-kill before the GC reacts",
			"memory_limit_bytes", a.MemoryLimit, "cgroup_limit_bytes", a.CgroupLimit)
	}
	return a, nil
}

// resolveGOGC picks the GOGC from the flag, the environment or the default.
func resolveGOGC(flag int) (int, string, error) {
	switch {
	case flag > 0 || flag == -1:
		return flag, "flag", nil
	case flag < -1:
		return 0, "", fmt.Errorf("%w: flag %d: want -1 (off), 0 (default) or a positive percentage", ErrBadGOGC, flag)
	}
	env := os.Getenv("GOGC")
	if env == "" {
		return DefaultGOGC, "default", nil
	}
	if env == "off" {
		return -1, "env GOGC", nil
	}
	n, err := strconv.Atoi(env)
	if err != nil {
		// The runtime silently falls back to 100 here; failing at start is
		// kinder than running with a setting nobody chose.
		return 0, "", fmt.Errorf("%w: env GOGC=%q: want \"off\" or an integer percentage", ErrBadGOGC, env)
	}
	if n < 0 {
		n = -1 // as the runtime reads it: any negative value is off
	}
	return n, "env GOGC", nil
}

// resolveMemoryLimit picks the memory limit from the flag, the environment
// or the cgroup limit (0 when none); math.MaxInt64 means no limit.
func resolveMemoryLimit(flag, cgroup int64) (int64, string, error) {
	switch {
	case flag > 0:
		return flag, "flag", nil
	case flag < 0:
		return math.MaxInt64, "flag", nil
	}
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		if env == "off" {
			return math.MaxInt64, "env GOMEMLIMIT", nil
		}
		n, err := ParseBytes(env)
		if err != nil {
			return 0, "", fmt.Errorf("env GOMEMLIMIT: %w", err)
		}
		return n, "env GOMEMLIMIT", nil
	}
	if cgroup > 0 {
		// Divide first: cgroup may be near 1<<62 and cgroup*90 would overflow.
		limit := cgroup/100*cgroupShare + cgroup%100*cgroupShare/100
		return limit, fmt.Sprintf("cgroup (%d%% of %d)", cgroupShare, cgroup), nil
	}
	return math.MaxInt64, "none", nil
}
