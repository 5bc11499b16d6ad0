// Command sendfloor measures the floor under the relay's CPU per forwarded
// packet on this machine: what the kernel and the cipher alone cost to
// fan a packet out to N loopback listeners the way the relay does, with
// nothing of the relay in between.
//
// It runs two processes of itself. The drain (pinned to CPU 1, like the
// load generator in `make bench`) opens N UDP sockets that read and drop
// what arrives, and plays a publisher: one datagram to the sender every
// 1/rate s. The sender (pinned to CPU 0, like the relay) waits for each
// in the netpoller, reads it with a raw recvmmsg, then for each listener
// writes an RTP header and the payload into a send slot, encrypts the slot
// in place with that listener's own SRTP context (AES-128-GCM, pion/srtp,
// as the relay's direct send path does), and sends the slots with raw
// sendmmsg calls of up to 32 datagrams. It reports its CPU (user + system)
// and voluntary context switches per datagram sent over the window.
//
//	go run -tags nolibopusfile ./internal/cmd/sendfloor -listeners 100 -rate 200
//
// docs/performance.md quotes it against the relay's `fanout` scenario.
// Its raw recvmmsg and sendmmsg calls repeat the relay's (media's
// udpread_mmsg_linux.go and udpbatch_linux.go) on purpose: a floor must
// not run through the code it is the floor of.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("sendfloor: ")
	var o options
	flag.StringVar(&o.role, "role", "", "internal: send or drain (the command starts both)")
	flag.IntVar(&o.listeners, "listeners", 100, "listeners each packet is sent to")
	flag.IntVar(&o.rate, "rate", 200, "packets a second into the sender (the fanout scenario: 2 publishers × 100)")
	flag.IntVar(&o.payload, "payload", 68, "bytes after the 12-byte RTP header, before the 16-byte tag: 68 is the fanout scenario's 60-byte Opus frame (48 kbit/s) and its 8-byte header extension")
	flag.BoolVar(&o.cipher, "cipher", true, "encrypt every copy (AES-128-GCM); false: the kernel alone")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "time before the window")
	flag.DurationVar(&o.window, "window", 20*time.Second, "measured time")
	flag.StringVar(&o.trigger, "trigger", "", "internal: the sender's address, for the drain")
	flag.Parse()
	if o.listeners < 1 || o.listeners > 10000 || o.rate < 1 || o.payload < 1 || o.payload > 1400 {
		log.Fatal("want 1 ≤ -listeners ≤ 10000, -rate ≥ 1, 1 ≤ -payload ≤ 1400")
	}
	var err error
	switch o.role {
	case "send":
		err = send(o)
	case "drain":
		err = drain(o)
	case "":
		err = orchestrate(o)
	default:
		err = fmt.Errorf("-role %q: want send or drain", o.role)
	}
	if err != nil {
		log.Fatal(err)
	}
}

type options struct {
	role                     string
	listeners, rate, payload int
	cipher                   bool
	warmup, window           time.Duration
	trigger                  string
}

// orchestrate starts the sender on CPU 0 and the drain on CPU 1 (with
// taskset, where there is one), wires them, and prints the sender's report.
func orchestrate(o options) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	pin := func(cpu string, args ...string) *exec.Cmd {
		if _, err := exec.LookPath("taskset"); err == nil {
			return exec.Command("taskset", append([]string{"-c", cpu, self}, args...)...)
		}
		return exec.Command(self, args...)
	}
	common := []string{"-listeners", strconv.Itoa(o.listeners), "-rate", strconv.Itoa(o.rate),
		"-payload", strconv.Itoa(o.payload), "-cipher=" + strconv.FormatBool(o.cipher),
		"-warmup", o.warmup.String(), "-window", o.window.String()}
	sender := pin("0", append([]string{"-role", "send"}, common...)...)
	sender.Stderr = os.Stderr
	sin, err := sender.StdinPipe()
	if err != nil {
		return err
	}
	sout, err := sender.StdoutPipe()
	if err != nil {
		return err
	}
	if err := sender.Start(); err != nil {
		return err
	}
	defer sender.Process.Kill() //nolint:errcheck // ends it if we fail first
	sr := bufio.NewScanner(sout)
	if !sr.Scan() {
		return fmt.Errorf("the sender did not start: %v", sr.Err())
	}
	addr := strings.TrimSpace(sr.Text())
	drainer := pin("1", append([]string{"-role", "drain", "-trigger", addr}, common...)...)
	drainer.Stderr = os.Stderr
	dout, err := drainer.StdoutPipe()
	if err != nil {
		return err
	}
	if err := drainer.Start(); err != nil {
		return err
	}
	defer func() { _ = drainer.Process.Kill(); _ = drainer.Wait() }()
	dr := bufio.NewScanner(dout)
	if !dr.Scan() {
		return fmt.Errorf("the drain did not start: %v", dr.Err())
	}
	if _, err := fmt.Fprintln(sin, dr.Text()); err != nil { // the listeners' ports
		return err
	}
	for sr.Scan() {
		fmt.Println(sr.Text())
	}
	return sender.Wait()
}
