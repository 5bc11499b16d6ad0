// Package gctune sets GOMEMLIMIT and GOGC when the relay starts and exports
// the garbage collector's behaviour to Prometheus.
//
// Why the relay tunes the GC at all: it is a forwarding server with a small
// live heap (pooled packet buffers, per-room state) and a high allocation
// rate from network I/O. With only GOGC the heap target is a multiple of a
// small live heap, so memory is cheap but the GC runs often; in a container
// nothing stops a burst from pushing the process past its cgroup limit and
// getting it OOM-killed. A memory limit (GOMEMLIMIT) makes the runtime
// collect harder as it nears the container's limit instead of dying, and
// GOGC then only trades memory for GC CPU below that ceiling. The metrics
// let the team measure that trade before changing DefaultGOGC.
package gctune
