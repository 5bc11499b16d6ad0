package gctune

import (
	"os"
	"path/filepath"
	"testing"
)

// writeTree writes files (path relative to root -> contents) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	tests := []struct {
		name   string
		self   string // contents of /proc/self/cgroup
		files  map[string]string
		want   int64
		wantOK bool
	}{
		{
			name:  "v2 number in own cgroup",
			self:  "0::/relay.slice/relay.service\n",
			files: map[string]string{"relay.slice/relay.service/memory.max": "536870912\n", "memory.max": "max\n"},
			want:  536870912, wantOK: true,
		},
		{
			name:  "v2 root only (container with cgroup namespace)",
			self:  "0::/\n",
			files: map[string]string{"memory.max": "1073741824\n"},
			want:  1073741824, wantOK: true,
		},
		{
			name:  "v2 own path not mounted falls back to root",
			self:  "0::/kubepods/pod1/abc\n",
			files: map[string]string{"memory.max": "268435456\n"},
			want:  268435456, wantOK: true,
		},
		{
			name: "v2 parent tighter than own",
			self: "0::/a/b\n",
			files: map[string]string{
				"a/b/memory.max": "max\n",
				"a/memory.max":   "100000000\n",
			},
			want: 100000000, wantOK: true,
		},
		{
			name:  "v2 max",
			self:  "0::/\n",
			files: map[string]string{"memory.max": "max\n", "cgroup.controllers": "cpu memory\n"},
		},
		{
			name:  "v1 number",
			self:  "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n",
			files: map[string]string{"memory/memory.limit_in_bytes": "268435456\n"},
			want:  268435456, wantOK: true,
		},
		{
			name:  "v1 number in own cgroup",
			self:  "7:pids:/x\n4:memory:/docker/abc\n",
			files: map[string]string{"memory/docker/abc/memory.limit_in_bytes": "134217728\n", "memory/memory.limit_in_bytes": "9223372036854771712\n"},
			want:  134217728, wantOK: true,
		},
		{
			name:  "v1 huge",
			self:  "4:memory:/\n",
			files: map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"},
		},
		{
			name:  "none",
			self:  "0::/\n",
			files: map[string]string{"cgroup.controllers": "cpu\n"},
		},
		{
			name:  "garbage value",
			self:  "0::/\n",
			files: map[string]string{"memory.max": "lots\n"},
		},
		{
			name:  "dot-dot cannot escape root",
			self:  "0::/../../..\n",
			files: map[string]string{"memory.max": "4096\n"},
			want:  4096, wantOK: true,
		},
		{
			name:  "empty self cgroup",
			self:  "",
			files: map[string]string{"memory.max": "8192\n"},
			want:  8192, wantOK: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tc.files)
			got, ok := cgroupMemoryLimit(root, tc.self)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("cgroupMemoryLimit = (%d, %v), want (%d, %v)", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestParseSelfCgroup(t *testing.T) {
	tests := []struct {
		name, in, v2, v1 string
	}{
		{"v2 only", "0::/user.slice/x.scope\n", "/user.slice/x.scope", "/"},
		{"v1 only", "5:memory:/docker/a\n2:cpu,cpuacct:/docker/a\n", "/", "/docker/a"},
		{"hybrid", "5:memory:/m\n0::/u\n", "/u", "/m"},
		{"v1 combined controllers", "3:memory,hugetlb:/c\n", "/", "/c"},
		{"empty", "", "/", "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v2, v1 := parseSelfCgroup(tc.in)
			if v2 != tc.v2 || v1 != tc.v1 {
				t.Fatalf("parseSelfCgroup = (%q, %q), want (%q, %q)", v2, v1, tc.v2, tc.v1)
			}
		})
	}
}
