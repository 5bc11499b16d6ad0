//go:build !(linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || s390x))

package media

import (
	"net"
	"net/netip"

	"github.com/lianmai/relay/bufpool"
)

// readBatch: one datagram per read without recvmmsg.
const readBatch = 1

// batchReads: a read takes one datagram.
const batchReads = false

// batchReader without recvmmsg: one datagram per read.
type batchReader struct {
	s    *net.UDPConn
	buf  [bufpool.Size]byte
	n    int
	addr netip.AddrPort
}

func newBatchReader(s *net.UDPConn) (*batchReader, error) {
	return &batchReader{s: s}, nil
}

func (r *batchReader) next() (int, error) {
	n, addr, err := r.s.ReadFromUDPAddrPort(r.buf[:])
	if err != nil {
		return 0, err
	}
	r.n, r.addr = n, netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	return 1, nil
}

func (r *batchReader) datagram(int) ([]byte, netip.AddrPort) {
	return r.buf[:r.n], r.addr
}
