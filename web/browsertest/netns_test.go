package browsertest

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/server"
	"go.uber.org/goleak"
)

// blockedNet is a network namespace joined to this one by a veth pair,
// whose outgoing traffic to the relay an nftables table filters: a
// listener's network that blocks UDP (an office, a hotel).
type blockedNet struct {
	t        *testing.T
	name     string
	relayIP  net.IP // this namespace's end of the veth pair, where the relay listens
	clientIP net.IP // the namespace's end
}

// run runs a command, failing t with its output if it fails.
func (b *blockedNet) run(name string, args ...string) {
	b.t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// newBlockedNet makes the namespace and the veth pair, or skips t saying
// why it cannot (not root, no ip or nft, namespaces not allowed). Both
// are removed at cleanup.
func newBlockedNet(t *testing.T) *blockedNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the network namespace test needs root (ip netns, nftables); run the tests as root to include it")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the network namespace test needs %s: apt-get install -y iproute2 nftables", tool)
		}
	}
	id := os.Getpid()%10000*10 + rand.IntN(10)
	b := &blockedNet{t: t, name: fmt.Sprintf("lmreach%d", id),
		relayIP: net.IPv4(10, 213, byte(id%250), 1).To4(), clientIP: net.IPv4(10, 213, byte(id%250), 2).To4()}
	if out, err := exec.Command("ip", "netns", "add", b.name).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here (a container without CAP_SYS_ADMIN?): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", b.name).CombinedOutput(); err != nil {
			t.Errorf("remove network namespace %s: %v: %s", b.name, err, out)
		}
	})
	host, peer := fmt.Sprintf("lmr%dh", id), fmt.Sprintf("lmr%dn", id)
	b.run("ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", b.name)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() }) // gone with the namespace already, normally
	b.run("ip", "addr", "add", b.relayIP.String()+"/30", "dev", host)
	b.run("ip", "link", "set", host, "up")
	b.run("ip", "netns", "exec", b.name, "ip", "addr", "add", b.clientIP.String()+"/30", "dev", peer)
	// No IPv6 link-local address on the page's side: its duplicate
	// address detection ends a second or two after the link is up, and
	// Chromium, started meanwhile, fails a navigation in flight with
	// ERR_NETWORK_CHANGED (seen once under load in CI's run).
	b.run("ip", "netns", "exec", b.name, "ip", "link", "set", peer, "addrgenmode", "none")
	b.run("ip", "netns", "exec", b.name, "ip", "link", "set", peer, "up")
	b.run("ip", "netns", "exec", b.name, "ip", "link", "set", "lo", "up")
	return b
}

// block replaces the namespace's filter: its packets to the relay's
// address are dropped when they match one of rules (nft matches such as
// "meta l4proto udp" or "tcp dport 3478").
func (b *blockedNet) block(rules ...string) {
	b.t.Helper()
	var body strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&body, "ip daddr %s %s drop\n", b.relayIP, r)
	}
	ruleset := "table inet lmreach\ndelete table inet lmreach\ntable inet lmreach {\nchain output {\ntype filter hook output priority 0; policy accept;\n" + body.String() + "}\n}\n"
	cmd := exec.Command("ip", "netns", "exec", b.name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.t.Fatalf("nft: %v\n%s\n%s", err, out, ruleset)
	}
}

// browser starts Chromium inside the namespace (chromedp talks to it over
// a pipe, which ip netns exec passes on); it trusts the test certificate
// by its key's hash only.
func (b *blockedNet) browser(ctx context.Context, cert *relaytest.Cert) context.Context {
	b.t.Helper()
	wrapper := filepath.Join(b.t.TempDir(), "chromium-in-netns")
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", b.name, chromium(b.t))
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		b.t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.TLS.Certificate[0])
	if err != nil {
		b.t.Fatal(err)
	}
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	bctx, _ := startBrowser(b.t, ctx,
		chromedp.ExecPath(wrapper),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
	)
	return bctx
}

// TestBlockedUDP: Chromium in a network namespace whose UDP to the relay
// is dropped opens the page over HTTPS (a certificate made by the test),
// joins as audience and hears a host: over ICE-TCP; then, with the media
// TCP port dropped too, through the relay's TURN server over TCP or TLS.
// The transport the page shows is logged and checked.
func TestBlockedUDP(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs after the browser and the relay are gone
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	t.Cleanup(cancel)
	chromium(t)
	bn := newBlockedNet(t)
	cert := relaytest.NewCert(t, bn.relayIP)

	ip := bn.relayIP.String()
	rl, err := server.New(server.Config{
		UDPAddr: ip + ":0", TCPAddr: ip + ":0",
		TURN: &server.TURNConfig{UDPAddr: ip + ":0", TCPAddr: ip + ":0", TLSAddr: ip + ":0", Host: ip,
			TLS: &tls.Config{Certificates: []tls.Certificate{cert.TLS}}},
		Logger: relaytest.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(rl.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	hs.StartTLS()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := rl.Shutdown(sctx); err != nil {
			t.Errorf("relay shutdown: %v", err)
		}
		hs.Close()
	})
	base := hs.URL // https://10.213.x.1:port

	// The host: a Go client in this namespace, publishing real Opus.
	host, err := client.Dial(ctx, client.Config{URL: "wss" + strings.TrimPrefix(base, "https") + "/ws", Room: "blocked", Name: "host",
		Role: protocol.RoleHost, TLSConfig: &tls.Config{RootCAs: cert.Pool}, IgnoreICEServers: true, Logger: relaytest.Logger()})
	if err != nil {
		t.Fatalf("host joins: %v", err)
	}
	defer host.Close()
	pub, err := host.Publish(ctx)
	if err != nil {
		t.Fatalf("host publishes: %v", err)
	}
	src, err := opusgen.NewSource(3, 1)
	if err != nil {
		t.Fatal(err)
	}
	sendCtx, stopSending := context.WithCancel(ctx)
	sent := make(chan error, 1)
	go func() { sent <- relaytest.SendOpus(sendCtx, pub, src, nil) }()
	defer func() {
		stopSending()
		if err := <-sent; err != nil {
			t.Errorf("host sending: %v", err)
		}
	}()

	browser := bn.browser(ctx, cert)
	hears := `window.relayPage.stats().then(s => !!s && !!s.sub && s.sub.packetsReceived > 50)`
	transport := `document.querySelector('[data-stat="transport"]').textContent`
	_, mediaTCP, _ := net.SplitHostPort(rl.MediaTCPAddr().String())
	mediaUDP := ""
	for _, a := range rl.MediaUDPAddrs() {
		mediaUDP = strconv.Itoa(int(a.Port()))
	}
	turnPort := map[string]string{} // "turn:...transport=tcp" etc. -> port
	for _, u := range host.Joined().ICEServers[0].URLs {
		hostPort, _, _ := strings.Cut(u[strings.Index(u, ":")+1:], "?")
		_, port, _ := net.SplitHostPort(hostPort)
		turnPort[u[:strings.Index(u, ":")]+"/"+u[strings.LastIndex(u, "=")+1:]] = port
	}
	// Each phase leaves the page one way through, and the page, offered
	// every way (the relay's candidates and all its TURN URLs), finds it
	// by itself. Each phase also blocks the ways a later phase needs,
	// so that its outcome does not depend on which of two working pairs
	// Chromium happens to nominate first (with both ICE-TCP and TURN/TCP
	// open it took TURN/TCP now and then on a loaded machine).
	turnTCP, turnTLS := "tcp dport "+turnPort["turn/tcp"], "tcp dport "+turnPort["turns/tcp"]
	for _, phase := range []struct {
		name  string
		rules []string
		want  string
	}{
		{"nothing blocked", nil, "udp"},
		{"UDP blocked", []string{"meta l4proto udp", turnTCP, turnTLS}, "tcp"},
		{"the media ports blocked", []string{"udp dport " + mediaUDP, "tcp dport " + mediaTCP, turnTCP, turnTLS}, "relay/udp"},
		{"UDP and the media TCP port blocked", []string{"meta l4proto udp", "tcp dport " + mediaTCP, turnTLS}, "relay/tcp"},
		{"UDP and TCP but TLS to TURN blocked", []string{"meta l4proto udp", "tcp dport " + mediaTCP, turnTCP}, "relay/tls"},
	} {
		t.Run(phase.name, func(t *testing.T) {
			bn.t = t
			bn.block(phase.rules...)
			p := newPage(t, browser, "listener")
			p.join(base, "blocked", "listener", "audience")
			p.waitFor("hears the host", hears, 30*time.Second)
			p.waitFor("panel shows the transport", transport+` !== "–"`, 10*time.Second)
			got := eval[string](p, transport)
			t.Logf("%s: the page's media went over %s", phase.name, got)
			if got != phase.want {
				t.Errorf("transport %q, want %q", got, phase.want)
			}
			p.run("leave", chromedp.Navigate("about:blank"))
		})
	}
	// The relay saw it too (the host's own connection is one of the udp).
	r := &relaytest.Relay{Server: rl}
	for tr, n := range map[string]float64{"udp": 2, "tcp": 1, "relay": 3} {
		if v := r.Value(t, "relay_ice_selected_total", "transport", tr); v < n {
			t.Errorf("relay_ice_selected_total{transport=%q} = %v, want at least %v", tr, v, n)
		}
	}
}
