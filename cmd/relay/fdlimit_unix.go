//go:build unix

package main

import "syscall"

// raiseFileLimit raises the soft limit on open files to the hard limit
// (Go's runtime already does on Linux; doing it here makes it explicit and
// portable) and returns both as they are afterwards.
func raiseFileLimit() (soft, hard uint64, err error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, 0, err
	}
	if l.Cur < l.Max {
		raised := l
		raised.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			l = raised
		}
	}
	return uint64(l.Cur), uint64(l.Max), nil
}
