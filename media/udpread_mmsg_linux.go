//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || s390x)

package media

import (
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/lianmai/relay/bufpool"
)

// readBatch is how many datagrams one recvmmsg takes at most. Publishers'
// packets come a few at a time (one per publisher per 10 ms), so a batch
// is mostly what queued while the reader fanned out the last one.
const readBatch = 8

// batchReads: a read takes every datagram queued, up to readBatch.
const batchReads = true

// batchReader reads a socket with recvmmsg, raw: the socket is
// non-blocking, so the call never sleeps, and a read that is not marked
// as a system call does not wake Go's sysmon from its deep sleep. A
// marked one (what net.UDPConn's reads do) woke it once per packet, and
// it then polled every 20 µs through the whole fan-out that followed:
// most of the relay's thread wake-ups per forwarded packet.
type batchReader struct {
	rc    syscall.RawConn
	hdrs  [readBatch]mmsghdr
	iovs  [readBatch]unix.Iovec
	names [readBatch]unix.RawSockaddrInet6 // large enough for IPv4's too
	bufs  [readBatch][bufpool.Size]byte
	n     int                // datagrams in the last batch
	errno unix.Errno         // the last batch's error, if it failed
	read  func(uintptr) bool // r.recvmmsg, made once: RawConn.Read takes it without allocating
}

func newBatchReader(s *net.UDPConn) (*batchReader, error) {
	rc, err := s.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &batchReader{rc: rc}
	r.read = r.recvmmsg
	for i := range r.hdrs {
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(bufpool.Size)
		r.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		r.hdrs[i].hdr.Iov = &r.iovs[i]
		r.hdrs[i].hdr.SetIovlen(1)
	}
	return r, nil
}

// next waits for the socket to be readable and reads what has queued, up
// to readBatch datagrams: how many. The socket's errors are returned as
// net.UDPConn's reads return them (net.ErrClosed once it is closed).
func (r *batchReader) next() (int, error) {
	r.n, r.errno = 0, 0
	if err := r.rc.Read(r.read); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, r.errno
	}
	return r.n, nil
}

// recvmmsg is RawConn.Read's callback: false asks to wait until the
// socket is readable.
func (r *batchReader) recvmmsg(fd uintptr) bool {
	for i := range r.hdrs {
		r.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet6
	}
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&r.hdrs[0])), readBatch, unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			r.n = int(n)
			return true
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		default:
			r.errno = e // an ICMP error from an earlier send, and the like
			return true
		}
	}
}

// datagram is the batch's i-th datagram and its source. The bytes are
// the reader's until the next call of next.
func (r *batchReader) datagram(i int) ([]byte, netip.AddrPort) {
	sa := &r.names[i]
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	port := uint16(p[0])<<8 | uint16(p[1]) // network byte order
	var a netip.Addr
	switch sa.Family {
	case unix.AF_INET:
		a = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(sa)).Addr)
	case unix.AF_INET6:
		a = netip.AddrFrom16(sa.Addr).Unmap()
		if sa.Scope_id != 0 && a.Is6() {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
	}
	return r.bufs[i][:r.hdrs[i].len], netip.AddrPortFrom(a, port)
}
