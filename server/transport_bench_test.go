package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lianmai/relay/client"
	"github.com/lianmai/relay/internal/opusgen"
	"github.com/lianmai/relay/internal/relaytest"
	"github.com/lianmai/relay/protocol"
	"github.com/lianmai/relay/server"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// errDone ends a benchmark's sending.
var errDone = errors.New("done")

// BenchmarkTransportLatency measures, per listener transport, the one-way
// latency of a forwarded packet on loopback: from the publisher's
// WriteRTP to the listener's ReadRTP (pion on both ends, the relay in
// between, all in this process). One op is one 10 ms Opus frame, paced in
// real time, so ns/op is the pacing and means nothing; the figures are
// p50-µs and p99-µs. Relay CPU per packet cannot be told apart from the
// clients' here (same process); that needs the load generator.
func BenchmarkTransportLatency(b *testing.B) {
	cert := relaytest.NewCert(b)
	for _, tr := range []struct {
		name string
		cfg  client.Config
	}{
		{"udp", client.Config{IgnoreICEServers: true}},
		{"tcp", client.Config{IgnoreICEServers: true, NetworkTypes: tcpOnly}},
		{"relay-tcp", client.Config{ICETransportPolicy: webrtc.ICETransportPolicyRelay, ICEServerURLs: urlsWith("turn:", "transport=tcp")}},
		{"relay-tls", client.Config{ICETransportPolicy: webrtc.ICETransportPolicyRelay, ICEServerURLs: urlsWith("turns:", ""),
			TLSConfig: &tls.Config{RootCAs: cert.Pool}}},
	} {
		b.Run(tr.name, func(b *testing.B) {
			r, ctx := startRelay(b, func(c *server.Config) {
				withTURN(cert)(c)
				c.TCPAddr = "127.0.0.1:0"
			})
			host := join(ctx, b, client.Config{URL: r.URL, Name: "host", Role: protocol.RoleHost, IgnoreICEServers: true})
			lcfg := tr.cfg
			lcfg.URL, lcfg.Name = r.URL, "listener"
			listener := join(ctx, b, lcfg)
			for _, c := range []*client.Client{host, listener} {
				if err := c.SubConnected(ctx); err != nil {
					b.Fatal(err)
				}
			}
			pub, err := host.Publish(ctx)
			if err != nil {
				b.Fatal(err)
			}
			src, err := opusgen.NewSource(11, 1)
			if err != nil {
				b.Fatal(err)
			}
			var mu sync.Mutex
			sentAt := make(map[string]time.Time) // payload -> when written
			var lat []time.Duration
			got := make(chan *client.RemoteTrack, 1)
			go func() {
				select {
				case rt := <-listener.Tracks():
					got <- rt
				case <-ctx.Done():
					close(got)
				}
			}()
			readDone := make(chan struct{})
			sendCtx, stop := context.WithCancel(ctx)
			defer stop()
			go func() {
				defer close(readDone)
				rt, ok := <-got
				if !ok {
					return
				}
				for {
					pkt, _, err := rt.Track.ReadRTP()
					if err != nil {
						return
					}
					now := time.Now()
					mu.Lock()
					if at, ok := sentAt[string(pkt.Payload)]; ok {
						lat = append(lat, now.Sub(at))
					}
					mu.Unlock()
				}
			}()
			// Warm up: the first second is not measured (the track's
			// negotiation, the first packets).
			n := 0
			warm := 100
			b.ResetTimer()
			err = relaytest.SendOpus(sendCtx, pub, src, func(p []byte, _ *rtp.Packet) error {
				if n == warm {
					mu.Lock()
					lat = lat[:0]
					mu.Unlock()
				}
				if n == warm+b.N {
					stop()
					return errDone
				}
				n++
				mu.Lock()
				sentAt[string(p)] = time.Now()
				mu.Unlock()
				return nil
			})
			b.StopTimer()
			if err != nil && !errors.Is(err, errDone) {
				b.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond) // the last packets' way through
			_ = listener.Close()
			<-readDone
			mu.Lock()
			defer mu.Unlock()
			if len(lat) < b.N/2 {
				b.Fatalf("%d of %d packets measured", len(lat), b.N)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(len(lat))/float64(b.N), "heard/sent")
		})
	}
}
