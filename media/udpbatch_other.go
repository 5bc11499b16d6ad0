//go:build !(linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || s390x))

package media

import (
	"errors"
	"net"
	"net/netip"
)

// batchSender without sendmmsg: batchConn writes every datagram at once.
type batchSender struct{}

func (*batchSender) init(*net.UDPConn, bool) bool { return false }

func (*batchSender) close() {}

func (*batchSender) send(*batchBuf) {}

func (*batchSender) sendOne([]byte, netip.AddrPort) error { return errors.ErrUnsupported }
