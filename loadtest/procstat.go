package loadtest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lianmai/relay/loadtest/report"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times. It is
// 100 on every Linux architecture Go supports (it is part of the ABI).
const clockTicks = 100

// procStat is what /proc/<pid>/stat and statm say about a process.
type procStat struct {
	cpu     time.Duration // user + system CPU time
	rss     int64         // resident set, bytes
	threads int
}

// readProcStat reads /proc/<pid>/stat and /proc/<pid>/statm.
func readProcStat(pid int) (procStat, error) {
	var ps procStat
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, fmt.Errorf("relay process %d: %w (is -relay-pid right and the relay still running?)", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after the last ')' start at field 3.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ps, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	const utime, stime, threads, rss = 14 - 3, 15 - 3, 20 - 3, 24 - 3 // field numbers of proc(5), from field 3
	if len(f) <= rss {
		return ps, fmt.Errorf("/proc/%d/stat: %d fields, want more than %d", pid, len(f)+2, rss+3)
	}
	u, err1 := strconv.ParseInt(f[utime], 10, 64)
	st, err2 := strconv.ParseInt(f[stime], 10, 64)
	th, err3 := strconv.Atoi(f[threads])
	pages, err4 := strconv.ParseInt(f[rss], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return ps, fmt.Errorf("/proc/%d/stat: unparsable CPU or RSS fields", pid)
	}
	ps.cpu = time.Duration(u+st) * time.Second / clockTicks
	ps.rss = pages * int64(os.Getpagesize())
	ps.threads = th
	return ps, nil
}

// readWakeups sums voluntary_ctxt_switches over the threads of process
// pid (/proc/<pid>/task/*/status): how many times one of its threads
// went to sleep (futex, epoll, nanosleep) and was woken again. Threads
// that ended are not counted: a rate over a window is right while the
// threads live through it (Go keeps its Ms).
func readWakeups(pid int) (int64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, fmt.Errorf("relay process %d: %w", pid, err)
	}
	var n int64
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // the thread ended meanwhile
		}
		for line := range strings.Lines(string(data)) {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				if c, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
					n += c
				}
			}
		}
	}
	return n, nil
}

// selfCPU returns this process's user + system CPU time from getrusage,
// at microsecond resolution.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfRSS returns this process's resident set in bytes, 0 if unknown.
func selfRSS() int64 {
	ps, err := readProcStat(os.Getpid())
	if err != nil {
		return 0
	}
	return ps.rss
}

// readHostCPU reads the aggregate "cpu" line of /proc/stat: the machine's
// CPU time summed over every CPU, busy (user, nice, system, irq, softirq)
// and steal (taken by the hypervisor). Nil if it cannot be read.
func readHostCPU() *report.HostCPU {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return nil
	}
	var v [8]int64
	for i := range v {
		v[i], _ = strconv.ParseInt(f[i+1], 10, 64)
	}
	// user nice system idle iowait irq softirq steal
	busy := v[0] + v[1] + v[2] + v[5] + v[6]
	tick := func(n int64) time.Duration { return time.Duration(n) * time.Second / clockTicks }
	return &report.HostCPU{Busy: tick(busy), Steal: tick(v[7])}
}
