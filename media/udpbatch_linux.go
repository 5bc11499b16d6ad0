//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || s390x)

package media

import (
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr on 64-bit Linux.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// batchSender sends a batchBuf with sendmmsg. Owned by the batchConn's
// flush (under flushMu).
type batchSender struct {
	rc    syscall.RawConn
	dup   *os.File // the lane's own descriptor, nil for the socket's
	hdrs  [maxBatch]mmsghdr
	iovs  [maxBatch]unix.Iovec
	names [maxBatch]unix.RawSockaddrInet4
	// The batch in flight, for write (a method value made once, so that
	// RawConn.Write does not allocate a closure per batch).
	from, n int
	write   func(fd uintptr) bool
	errs    uint64     // datagrams the kernel refused (dropped), for tests
	errno   unix.Errno // the last refusal's reason, for sendOne
}

// init makes the sender write to c, through a duplicate of its
// descriptor if dup (so that its writes are not serialized with other
// lanes': Go lets one write at a time through a descriptor). false if
// that fails: the socket is then written through the lanes there are.
func (s *batchSender) init(c *net.UDPConn, dup bool) bool {
	var rc syscall.RawConn
	var err error
	if dup {
		// File duplicates the descriptor, which shares the socket and its
		// non-blocking mode; os makes the copy pollable.
		if s.dup, err = c.File(); err != nil {
			return false
		}
		rc, err = s.dup.SyscallConn()
	} else {
		rc, err = c.SyscallConn()
	}
	if err != nil {
		s.close()
		return false
	}
	s.rc = rc
	s.write = s.sendmmsg
	for i := range s.hdrs {
		s.names[i].Family = unix.AF_INET
		s.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		s.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet4
		s.hdrs[i].hdr.Iov = &s.iovs[i]
		s.hdrs[i].hdr.SetIovlen(1)
	}
	return true
}

// close closes the lane's own descriptor, if it has one.
func (s *batchSender) close() {
	if s.dup != nil {
		s.dup.Close()
		s.dup = nil
	}
}

// send sends p's datagrams, in order. A datagram the kernel refuses is
// dropped (UDP is lossy; the next packet tries again); a socket that
// fails as a whole (closed) drops the rest.
func (s *batchSender) send(p *batchBuf) {
	for i := range p.n {
		s.set(i, p.data[i][:p.lens[i]], p.addrs[i])
	}
	s.from, s.n = 0, p.n
	for s.from < s.n {
		if err := s.rc.Write(s.write); err != nil {
			return // closed, or the write deadline passed: pion is aborting writes
		}
	}
}

// sendOne sends b (not empty) to addr now: a write outside any batch
// (STUN, DTLS, RTCP), made raw like the batches' for the same reason
// (a write marked as a system call wakes sysmon).
func (s *batchSender) sendOne(b []byte, addr netip.AddrPort) error {
	s.set(0, b, addr)
	s.from, s.n, s.errno = 0, 1, 0
	if err := s.rc.Write(s.write); err != nil {
		return err
	}
	if s.errno != 0 {
		return os.NewSyscallError("sendmmsg", s.errno)
	}
	return nil
}

// set makes b to addr the i-th datagram of the next call.
func (s *batchSender) set(i int, b []byte, addr netip.AddrPort) {
	s.iovs[i].Base = &b[0]
	s.iovs[i].SetLen(len(b))
	s.names[i].Addr = addr.Addr().As4()
	port := addr.Port()
	p := (*[2]byte)(unsafe.Pointer(&s.names[i].Port))
	p[0], p[1] = byte(port>>8), byte(port) // network byte order
}

// sendmmsg is RawConn.Write's callback: false asks to wait until the
// socket is writable.
func (s *batchSender) sendmmsg(fd uintptr) bool {
	for s.from < s.n {
		// Raw: the socket is non-blocking, so the call never sleeps, and a
		// sendmmsg marked as a syscall outlasts sysmon's 20 µs tick, which
		// then hands the P to another thread and back (on a 1-CPU relay
		// that cost more than the syscalls saved).
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&s.hdrs[s.from])), uintptr(s.n-s.from), 0, 0, 0)
		switch {
		case e == unix.EAGAIN:
			return false
		case e == unix.EINTR:
		case e != 0:
			// The first datagram left failed: drop it, send the rest.
			s.errs++
			s.errno = e
			s.from++
		default:
			s.from += int(r)
		}
	}
	return true
}
