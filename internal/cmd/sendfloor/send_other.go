//go:build !(linux && (amd64 || arm64 || riscv64 || loong64 || ppc64le || s390x))

package main

import "errors"

var errLinux = errors.New("sendfloor measures Linux's sendmmsg: run it on 64-bit Linux")

func send(options) error  { return errLinux }
func drain(options) error { return errLinux }
