package media

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenUDP opens a UDP socket on laddr; with reuse, with SO_REUSEPORT
// set, so that more sockets can bind the same address and the kernel
// spreads the flows over them (udpread.go). Only sockets of the same
// user can join the group.
func listenUDP(network string, laddr *net.UDPAddr, reuse bool) (*net.UDPConn, error) {
	if !reuse {
		return net.ListenUDP(network, laddr)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, laddr.String())
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}
