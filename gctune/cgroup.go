package gctune

import (
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	defaultCgroupRoot = "/sys/fs/cgroup"
	// v1 reports "no limit" as a page-rounded MaxInt64; anything this large
	// is no real limit.
	hugeLimit = int64(1) << 62
)

// CgroupMemoryLimit reads the memory limit of this process's cgroup under
// root ("" means /sys/fs/cgroup): cgroup v2 memory.max, or v1
// memory/memory.limit_in_bytes. It starts at the process's own cgroup (from
// /proc/self/cgroup) and walks up to root, taking the smallest limit found,
// because a parent's limit binds too and because inside a container the
// listed path often does not exist under the mount, leaving only the root's
// file. "max" and v1 values >= 1<<62 mean none. It returns (0, false) when
// there is no limit.
func CgroupMemoryLimit(root string) (int64, bool) {
	// Unreadable (not Linux, no procfs): only the files at root are consulted.
	self, _ := os.ReadFile("/proc/self/cgroup")
	return cgroupMemoryLimit(root, string(self))
}

// cgroupMemoryLimit is CgroupMemoryLimit with the contents of
// /proc/self/cgroup passed in, so tests need not read the real one.
func cgroupMemoryLimit(root, selfCgroup string) (int64, bool) {
	if root == "" {
		root = defaultCgroupRoot
	}
	v2, v1 := parseSelfCgroup(selfCgroup)
	best, found := minUpTree(root, v2, "memory.max")
	// Hybrid hosts put the memory controller on v1 while v2 is mounted too.
	if n, ok := minUpTree(filepath.Join(root, "memory"), v1, "memory.limit_in_bytes"); ok && (!found || n < best) {
		best, found = n, true
	}
	return best, found
}

// parseSelfCgroup returns the v2 path ("0::path") and the v1 memory
// controller's path ("N:...memory...:path"); "/" when absent.
func parseSelfCgroup(s string) (v2, v1 string) {
	v2, v1 = "/", "/"
	for line := range strings.Lines(s) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
			continue
		}
		for ctl := range strings.SplitSeq(parts[1], ",") {
			if ctl == "memory" {
				v1 = parts[2]
			}
		}
	}
	return v2, v1
}

// minUpTree reads file in base/rel and each parent up to base itself and
// returns the smallest limit found.
func minUpTree(base, rel, file string) (int64, bool) {
	base = filepath.Clean(base)
	// Rooting rel before cleaning keeps ".." from escaping base.
	dir := filepath.Join(base, path.Clean("/"+rel))
	var best int64
	found := false
	for {
		if n, ok := readLimit(filepath.Join(dir, file)); ok && (!found || n < best) {
			best, found = n, true
		}
		if dir == base || len(dir) <= len(base) {
			return best, found
		}
		dir = filepath.Dir(dir)
	}
}

// readLimit reads one limit file; a missing, unparsable or unlimited value
// is no limit.
func readLimit(name string) (int64, bool) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= hugeLimit {
		return 0, false
	}
	return n, true
}
