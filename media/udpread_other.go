//go:build !linux

package media

import "net"

// listenUDP opens a UDP socket on laddr. Without SO_REUSEPORT here no
// sibling can bind its address: direct ingest reads it with one
// goroutine (openSiblings finds none).
func listenUDP(network string, laddr *net.UDPAddr, _ bool) (*net.UDPConn, error) {
	return net.ListenUDP(network, laddr)
}
