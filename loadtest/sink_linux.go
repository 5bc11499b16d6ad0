package loadtest

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// sinkSupported: sink listeners can filter their sockets here.
const sinkSupported = true

// dropMedia attaches a socket filter to c that drops RTP (a first byte of
// version 2 and a dynamic payload type, 96–127) in the kernel, before it
// is queued: the sink listener's ICE, DTLS and RTCP pass, its media never
// wakes the load generator. RTCP's packet types (200–206) read as 72–78
// there, STUN and DTLS start with other bytes.
func dropMedia(c *net.UDPConn) error {
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 0},     // A = first byte
		{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: 0xc0}, // version bits
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 0x80, Jt: 0, Jf: 4},
		{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 1},     // A = marker and payload type
		{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: 0x7f}, // payload type
		{Code: unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, K: 96, Jt: 0, Jf: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: 0},          // drop
		{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff}, // keep
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("sink socket: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog)
	}); err != nil {
		return fmt.Errorf("sink socket: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("sink socket: attaching the media filter (SO_ATTACH_FILTER): %w", serr)
	}
	return nil
}
