//go:build linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || s390x)

package main

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr on 64-bit Linux.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// sendBatch is the relay's largest sendmmsg (media/udpbatch.go).
const sendBatch = 32

// sender is the relay's fan-out with nothing but the header, the cipher
// and the kernel: one SRTP context, sequence number and SSRC per listener.
type sender struct {
	o       options
	rc      syscall.RawConn
	ctxs    []*srtp.Context
	to      []unix.RawSockaddrInet4
	seq     []uint16
	ssrc    []uint32
	ts      uint32
	payload []byte
	hdr     rtp.Header // EncryptRTP's parse, reused

	in    [8]mmsghdr
	inIov [8]unix.Iovec
	inBuf [8][1500]byte
	nIn   int

	out    [sendBatch]mmsghdr
	outIov [sendBatch]unix.Iovec
	outBuf [sendBatch][1500]byte
	from   int
	nOut   int
	sent   uint64
	errs   uint64

	recv, write func(uintptr) bool
}

func send(o options) error {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Println(c.LocalAddr())
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the listeners' ports: %w", err)
	}
	s := &sender{o: o, payload: make([]byte, o.payload)}
	_, _ = rand.Read(s.payload)
	for _, f := range strings.Split(strings.TrimSpace(line), ",") {
		ap, err := netip.ParseAddrPort(f)
		if err != nil {
			return fmt.Errorf("listener address %q: %w", f, err)
		}
		var sa unix.RawSockaddrInet4
		sa.Family = unix.AF_INET
		sa.Addr = ap.Addr().As4()
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(ap.Port()>>8), byte(ap.Port())
		key, salt := make([]byte, 16), make([]byte, 12)
		_, _ = rand.Read(key)
		_, _ = rand.Read(salt)
		ctx, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
		if err != nil {
			return err
		}
		s.to = append(s.to, sa)
		s.ctxs = append(s.ctxs, ctx)
		s.seq = append(s.seq, uint16(len(s.seq)*1000))
		s.ssrc = append(s.ssrc, uint32(0x10000+len(s.ssrc)))
	}
	if s.rc, err = c.SyscallConn(); err != nil {
		return err
	}
	s.recv, s.write = s.recvmmsg, s.sendmmsg
	for i := range s.in {
		s.inIov[i].Base = &s.inBuf[i][0]
		s.inIov[i].SetLen(len(s.inBuf[i]))
		s.in[i].hdr.Iov = &s.inIov[i]
		s.in[i].hdr.SetIovlen(1)
	}
	for i := range s.out {
		s.out[i].hdr.Iov = &s.outIov[i]
		s.out[i].hdr.SetIovlen(1)
		s.out[i].hdr.Namelen = unix.SizeofSockaddrInet4
	}
	return s.run()
}

// run fans out every datagram that arrives, and measures the window.
func (s *sender) run() error {
	start := time.Now()
	var ru0 unix.Rusage
	var sent0 uint64
	measuring := false
	for {
		s.nIn = 0
		if err := s.rc.Read(s.recv); err != nil {
			return err
		}
		for range s.nIn {
			if err := s.fanOut(); err != nil {
				return err
			}
		}
		since := time.Since(start)
		switch {
		case !measuring && since >= s.o.warmup:
			measuring = true
			sent0 = s.sent
			if err := unix.Getrusage(unix.RUSAGE_SELF, &ru0); err != nil {
				return err
			}
		case measuring && since >= s.o.warmup+s.o.window:
			var ru1 unix.Rusage
			if err := unix.Getrusage(unix.RUSAGE_SELF, &ru1); err != nil {
				return err
			}
			n := float64(s.sent - sent0)
			usr := float64(tv(ru1.Utime)-tv(ru0.Utime)) / n // tv is in µs
			sys := float64(tv(ru1.Stime)-tv(ru0.Stime)) / n
			fmt.Printf("listeners %d, %d packets/s in, cipher %v, payload %d B: %.0f datagrams/s over %v\n",
				len(s.to), s.o.rate, s.o.cipher, s.o.payload, n/s.o.window.Seconds(), s.o.window)
			fmt.Printf("sender CPU per datagram: %.2f µs (user %.2f, system %.2f); voluntary context switches per datagram: %.4f; refused datagrams: %d\n",
				usr+sys, usr, sys, float64(ru1.Nvcsw-ru0.Nvcsw)/n, s.errs)
			return nil
		}
	}
}

func tv(t unix.Timeval) int64 { return t.Sec*1_000_000 + t.Usec }

// fanOut sends one packet to every listener.
func (s *sender) fanOut() error {
	k := 0
	s.ts += 480
	for i := range s.to {
		buf := s.outBuf[k][:]
		h := rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: s.seq[i], Timestamp: s.ts, SSRC: s.ssrc[i]}
		s.seq[i]++
		n, err := h.MarshalTo(buf)
		if err != nil {
			return fmt.Errorf("RTP header: %w", err)
		}
		n += copy(buf[n:], s.payload)
		if s.o.cipher {
			out, err := s.ctxs[i].EncryptRTP(buf[:n], buf[:n], &s.hdr)
			if err != nil {
				return fmt.Errorf("SRTP: %w", err)
			}
			n = len(out)
		}
		s.outIov[k].Base = &buf[0]
		s.outIov[k].SetLen(n)
		s.out[k].hdr.Name = (*byte)(unsafe.Pointer(&s.to[i]))
		k++
		if k == sendBatch {
			if err := s.flush(k); err != nil {
				return err
			}
			k = 0
		}
	}
	if k > 0 {
		return s.flush(k)
	}
	return nil
}

func (s *sender) flush(n int) error {
	s.from, s.nOut = 0, n
	for s.from < s.nOut {
		if err := s.rc.Write(s.write); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
	s.sent += uint64(n)
	return nil
}

// recvmmsg and sendmmsg are raw, as the relay's are (media/udpread_mmsg_linux.go).
func (s *sender) recvmmsg(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.in[0])), uintptr(len(s.in)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			s.nIn = int(n)
			return true
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		default:
			return true // an ICMP error: nothing read
		}
	}
}

func (s *sender) sendmmsg(fd uintptr) bool {
	for s.from < s.nOut {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.out[s.from])), uintptr(s.nOut-s.from), 0, 0, 0)
		switch {
		case e == unix.EAGAIN:
			return false
		case e == unix.EINTR:
		case e != 0:
			s.errs++
			s.from++
		default:
			s.from += int(r)
		}
	}
	return true
}

// drain opens the listeners' sockets, which read and drop, and plays the
// publishers: a datagram to the sender every 1/rate s. It runs until the
// orchestrator stops it (at most warmup + window + 30 s).
func drain(o options) error {
	to, err := net.ResolveUDPAddr("udp4", o.trigger)
	if err != nil {
		return fmt.Errorf("-trigger: %w", err)
	}
	var ports []string
	for range o.listeners {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		ports = append(ports, c.LocalAddr().String())
		go func() {
			b := make([]byte, 1500)
			for {
				if _, _, err := c.ReadFromUDPAddrPort(b); err != nil {
					return
				}
			}
		}()
	}
	fmt.Println(strings.Join(ports, ","))
	pub, err := net.DialUDP("udp4", nil, to)
	if err != nil {
		return err
	}
	msg := make([]byte, 12+o.payload+16)
	t := time.NewTicker(time.Second / time.Duration(o.rate))
	defer t.Stop()
	end := time.After(o.warmup + o.window + 30*time.Second)
	for {
		select {
		case <-t.C:
			_, _ = pub.Write(msg)
		case <-end:
			return nil
		}
	}
}
