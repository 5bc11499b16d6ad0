package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"go.uber.org/goleak"
)

// TestMain lets a test run this binary as the relay itself (main), so that
// os.Exit and real signals can be tested in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("RELAY_TEST_AS_MAIN") == "1" {
		os.Args = append([]string{"relay"}, os.Args[1:]...)
		main()
		return
	}
	os.Exit(m.Run())
}

// TestSecondSignalExitsAtOnce: with a client connected and a long drain
// timeout, the first SIGINT starts the drain and a second one ends the
// process at once, with exit code 1.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, os.Args[0], "-http", "127.0.0.1:0", "-udp", "127.0.0.1:0", "-loopback", "-drain-timeout", "10m")
	cmd.Env = append(os.Environ(), "RELAY_TEST_AS_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	waitLine := func(re *regexp.Regexp) []string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("relay exited before logging %v", re)
				}
				if m := re.FindStringSubmatch(l); m != nil {
					return m
				}
			case <-ctx.Done():
				t.Fatalf("relay did not log %v", re)
			}
		}
	}
	addr := waitLine(regexp.MustCompile(`relay serving.*\bhttp=(\S+)`))[1]

	c, err := client.Dial(ctx, client.Config{URL: "ws://" + addr + "/ws", Room: "r", Name: "n", Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitLine(regexp.MustCompile(`draining`))
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitLine(regexp.MustCompile(`second signal; exiting now`))
	for range lines { // until the child closes stderr
	}
	err = cmd.Wait()
	exited = true
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("relay ended with %v, want exit code 1 (a 10 min drain was cut short)", err)
	}
}
