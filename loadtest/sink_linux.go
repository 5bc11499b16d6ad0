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
//
// The filter finds the payload itself: with fixed offsets (8 and 9, past
// the UDP header) it dropped DTLS and kept RTP now and then on this
// kernel (6.18; TestDropMedia caught it, the cause not found). If the
// packet starts with the UDP header, its length field (bytes 4–5) equals
// the packet's length, and the payload starts at 8; else at 0. A payload
// whose bytes 4–5 equal its length by chance is read from 8: one packet
// misjudged, no harm.
func dropMedia(c *net.UDPConn) error {
	filter := []unix.SockFilter{
		/* 0 */ {Code: unix.BPF_LDX | unix.BPF_W | unix.BPF_LEN}, // X = length
		/* 1 */ {Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 4}, // A = bytes 4–5
		/* 2 */ {Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_X, Jf: 2}, // the UDP header's length?
		/* 3 */ {Code: unix.BPF_LDX | unix.BPF_IMM, K: 8}, // payload at 8
		/* 4 */ {Code: unix.BPF_JMP | unix.BPF_JA, K: 1},
		/* 5 */ {Code: unix.BPF_LDX | unix.BPF_IMM, K: 0}, // payload at 0
		/* 6 */ {Code: unix.BPF_LD | unix.BPF_B | unix.BPF_IND, K: 0}, // A = first byte
		/* 7 */ {Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: 0xc0}, // version bits
		/* 8 */ {Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 0x80, Jf: 4},
		/* 9 */ {Code: unix.BPF_LD | unix.BPF_B | unix.BPF_IND, K: 1}, // A = marker and payload type
		/* 10 */ {Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: 0x7f},
		/* 11 */ {Code: unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, K: 96, Jf: 1},
		/* 12 */ {Code: unix.BPF_RET | unix.BPF_K, K: 0}, // drop
		/* 13 */ {Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff}, // keep
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
