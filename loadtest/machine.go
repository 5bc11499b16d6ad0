package loadtest

import (
	"bufio"
	"os"
	"runtime"
	"strings"

	"github.com/lianmai/relay/loadtest/report"
)

// machine describes this machine, for the report.
func machine() report.Machine {
	host, _ := os.Hostname()
	numCPU, model := cpuInfo()
	return report.Machine{
		Hostname:  host,
		NumCPU:    numCPU,
		CPUsUsed:  runtime.NumCPU(),
		CPUModel:  model,
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
	}
}

// cpuInfo counts the machine's processors and reads the first "model
// name" in /proc/cpuinfo (runtime.NumCPU counts only those this process
// may run on).
func cpuInfo() (n int, model string) {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU(), ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			n++
		case "model name":
			if model == "" {
				model = strings.TrimSpace(v)
			}
		}
	}
	return max(n, 1), model
}
