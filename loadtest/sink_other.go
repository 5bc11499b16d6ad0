//go:build !linux

package loadtest

import (
	"errors"
	"net"
)

// sinkSupported: sink listeners need Linux's socket filters.
const sinkSupported = false

func dropMedia(*net.UDPConn) error {
	return errors.New("sink listeners need Linux (SO_ATTACH_FILTER); set sink_audience to 0")
}
