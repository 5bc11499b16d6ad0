package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lianmai/relay/loadtest"
)

// options is the command line: where the relay is, what to run, where the
// reports go.
type options struct {
	cfg      loadtest.Config
	sc       loadtest.Scenario
	jsonOut  string
	htmlOut  string
	quiet    bool
	cpuProf  string
	logLevel slog.Level
}

// parseFlags reads args. A scenario file (-scenario) is read first; any
// scenario flag given on the command line overrides its field.
func parseFlags(args []string, getenv func(string) string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(out)
	var file, logLevel, tlsCA string
	var sc loadtest.Scenario
	var joinTimeout, settle, duration, micEvery, micHold, jitter, audioLoop time.Duration
	var nack bool
	var relays, relayPIDs string

	fs.StringVar(&file, "scenario", "", "scenario JSON file (see docs/loadtest.md); flags below override its fields")
	fs.StringVar(&o.cfg.URL, "url", "ws://127.0.0.1:8080/ws", "the relay's WebSocket URL")
	fs.StringVar(&o.cfg.MetricsURL, "metrics", "", "the relay's /metrics URL; default: next to -url; - for none")
	fs.IntVar(&o.cfg.RelayPID, "relay-pid", 0, "the relay's PID on this machine: its CPU and RSS come from /proc/<pid> (else from its /metrics)")
	fs.StringVar(&relays, "relays", "", "other relays of a cluster, comma-separated /ws URLs: the audience is spread round-robin over -url and these (docs/loadtest.md#clusters)")
	fs.StringVar(&relayPIDs, "relay-pids", "", "the -relays' PIDs, comma-separated, in the same order: their CPU from /proc")
	fs.StringVar(&o.cfg.Token, "token", "", "token sent in every join (a single-room scenario); env LOADTEST_TOKEN")
	fs.StringVar(&o.cfg.TokenSecret, "token-secret", "", "HS256 secret to mint a token per participant; env LOADTEST_TOKEN_SECRET")
	fs.BoolVar(&o.cfg.Loopback, "loopback", true, "ICE on loopback only (the relay runs on this machine with -loopback); false for a remote relay")
	fs.DurationVar(&o.cfg.WaitReady, "wait-ready", 5*time.Second, "wait up to this long for the relay to accept connections")
	fs.DurationVar(&o.cfg.Deadline, "deadline", 0, "bound on the whole run; 0 computes one from the scenario")
	fs.DurationVar(&o.cfg.Interval, "interval", time.Second, "progress line and time-series interval")
	fs.StringVar(&o.jsonOut, "json", "", "write the full report as JSON to this file")
	fs.StringVar(&o.htmlOut, "html", "", "write a self-contained HTML report with charts to this file")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line")
	fs.StringVar(&o.cpuProf, "cpuprofile", "", "write the load generator's own CPU profile to this file (to check its receive path)")
	fs.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error (debug includes pion's logs)")

	fs.StringVar(&sc.Name, "name", "", "scenario name, for the report")
	fs.IntVar(&sc.Rooms, "rooms", 1, "rooms")
	fs.IntVar(&sc.Hosts, "hosts", 1, "hosts per room (publish)")
	fs.IntVar(&sc.Guests, "guests", 1, "guests per room (publish)")
	fs.IntVar(&sc.Audience, "audience", 50, "audience members per room (receive only)")
	fs.Float64Var(&sc.JoinRate, "join-rate", 20, "joins started per second")
	fs.IntVar(&sc.JoinConcurrency, "join-concurrency", 8, "joins in flight at once")
	fs.BoolVar(&sc.JoinBurst, "join-burst", false, "the audience joins all at once (ignores -join-rate and -join-concurrency)")
	fs.DurationVar(&joinTimeout, "join-timeout", 15*time.Second, "one join, dial to connected")
	fs.DurationVar(&settle, "settle", 2*time.Second, "wait after the last join before measuring")
	fs.DurationVar(&duration, "duration", 20*time.Second, "measurement window")
	fs.StringVar(&sc.AudienceListen, "audience-listen", loadtest.ListenTracks, "what the audience asks for in join: tracks (one per publisher) or mix (the room's mix)")
	fs.IntVar(&sc.MixAudience, "mix-audience", 0, "with -audience-listen tracks: how many of each room's audience take the mix instead")
	fs.Float64Var(&sc.ChurnPerMin, "churn-per-min", 0, "audience leave-and-rejoin events per room per minute")
	fs.DurationVar(&micEvery, "mic-cycle-every", 0, "per room, an audience member takes the mic this often (needs the relay's mic workflow); 0 off")
	fs.DurationVar(&micHold, "mic-hold", 3*time.Second, "how long a mic guest publishes")
	fs.Float64Var(&sc.LossPct, "loss-pct", 0, "packets each publisher loses, percent")
	fs.StringVar(&sc.LossAt, "loss-at", loadtest.LossNetwork, "where the loss is: network (after the NACK responder: repairable) or sender (never sent)")
	fs.Float64Var(&sc.LossBurst, "loss-burst", 1, "mean loss burst length in frames (1: independent)")
	fs.DurationVar(&jitter, "jitter", 0, "hold each frame back a random 0..jitter before sending")
	fs.IntVar(&sc.DecodePerRoom, "decode-per-room", 2, "receivers per room that decode and conceal (the stutter sample)")
	fs.DurationVar(&audioLoop, "audio-loop", 2*time.Second, "length of each publisher's pre-encoded voice loop")
	fs.BoolVar(&nack, "nack", true, "publishers and decoding receivers negotiate NACK")
	fs.BoolVar(&sc.LeanNACK, "lean-nack", false, "lean receivers (audience not decoding) negotiate NACK too")
	fs.BoolVar(&sc.BareReceivers, "bare-receivers", false, "lean receivers run no pion interceptor (no NACK, no RTCP reports)")
	fs.IntVar(&sc.SinkAudience, "sink-audience", 0, "more audience members per room whose sockets drop media in the kernel (Linux): fanned out to, not measured")
	fs.Int64Var(&sc.Seed, "seed", 1, "seed for voices, loss and jitter")
	fs.StringVar(&sc.Transport, "transport", loadtest.TransportUDP, "how the audience reaches the relay: udp, tcp (ICE-TCP only), turn-udp, turn-tcp or turn-tls (relay candidates only, through the relay's TURN server: run it with -turn)")
	fs.StringVar(&tlsCA, "tls-ca", "", "PEM file of the CA (or self-signed certificate) to trust for a wss:// -url and -transport turn-tls; default: the system's")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: loadtest [flags]\n       loadtest summarize REPORT.json...   (medians over runs)\n       loadtest soakcheck REPORT.json      (judge a soak run: loadtest/soak.sh)\n       loadtest idlemem                    (memory touched after sitting idle: GC pauses on this host)\n       loadtest flood                      (a connection and join flood from one address: loadtest flood -h)\n       loadtest listencost REPORT.json...  (relay CPU per listener, mix against tracks: loadtest listencost -h)\n\nSynthetic co-streaming peers against a Lianmai relay; reports join latency, one-way latency,\nloss, stutter and the relay's CPU per forwarded packet. docs/loadtest.md has the details.\n\nExit status: 0 done, 1 the run failed (relay unreachable, refused, deadline), 2 bad flags or scenario,\n3 done but some joins failed or some receiver missed a publisher (or the mix).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q; see loadtest -h", fs.Arg(0))
	}
	if err := o.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return o, fmt.Errorf("-log-level %q: want debug, info, warn or error", logLevel)
	}
	if tlsCA != "" {
		pool, err := loadCA(tlsCA)
		if err != nil {
			return o, err
		}
		o.cfg.TLSConfig = &tls.Config{RootCAs: pool}
	}
	if err := parseRelays(&o.cfg, relays, relayPIDs); err != nil {
		return o, err
	}
	if o.cfg.Token == "" {
		o.cfg.Token = getenv("LOADTEST_TOKEN")
	}
	if o.cfg.TokenSecret == "" {
		o.cfg.TokenSecret = getenv("LOADTEST_TOKEN_SECRET")
	}

	sc.JoinTimeout, sc.Settle, sc.Duration = loadtest.Duration(joinTimeout), loadtest.Duration(settle), loadtest.Duration(duration)
	sc.MicCycleEvery, sc.MicHold = loadtest.Duration(micEvery), loadtest.Duration(micHold)
	sc.Jitter, sc.AudioLoop = loadtest.Duration(jitter), loadtest.Duration(audioLoop)
	sc.NACK = &nack
	if file == "" {
		o.sc = sc
		return o, nil
	}
	base, err := loadtest.LoadScenario(file)
	if err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.sc = overlay(base, sc, set)
	return o, nil
}

// overlay returns base with the fields whose flags were set taken from
// flags.
func overlay(base, flags loadtest.Scenario, set map[string]bool) loadtest.Scenario {
	pick := func(name string, apply func()) {
		if set[name] {
			apply()
		}
	}
	pick("name", func() { base.Name = flags.Name })
	pick("rooms", func() { base.Rooms = flags.Rooms })
	pick("hosts", func() { base.Hosts = flags.Hosts })
	pick("guests", func() { base.Guests = flags.Guests })
	pick("audience", func() { base.Audience = flags.Audience })
	pick("join-rate", func() { base.JoinRate = flags.JoinRate })
	pick("join-concurrency", func() { base.JoinConcurrency = flags.JoinConcurrency })
	pick("join-burst", func() { base.JoinBurst = flags.JoinBurst })
	pick("join-timeout", func() { base.JoinTimeout = flags.JoinTimeout })
	pick("settle", func() { base.Settle = flags.Settle })
	pick("duration", func() { base.Duration = flags.Duration })
	pick("audience-listen", func() { base.AudienceListen = flags.AudienceListen })
	pick("mix-audience", func() { base.MixAudience = flags.MixAudience })
	pick("churn-per-min", func() { base.ChurnPerMin = flags.ChurnPerMin })
	pick("mic-cycle-every", func() { base.MicCycleEvery = flags.MicCycleEvery })
	pick("mic-hold", func() { base.MicHold = flags.MicHold })
	pick("loss-pct", func() { base.LossPct = flags.LossPct })
	pick("loss-burst", func() { base.LossBurst = flags.LossBurst })
	pick("loss-at", func() { base.LossAt = flags.LossAt })
	pick("jitter", func() { base.Jitter = flags.Jitter })
	pick("decode-per-room", func() { base.DecodePerRoom = flags.DecodePerRoom })
	pick("audio-loop", func() { base.AudioLoop = flags.AudioLoop })
	pick("nack", func() { base.NACK = flags.NACK })
	pick("lean-nack", func() { base.LeanNACK = flags.LeanNACK })
	pick("bare-receivers", func() { base.BareReceivers = flags.BareReceivers })
	pick("sink-audience", func() { base.SinkAudience = flags.SinkAudience })
	pick("seed", func() { base.Seed = flags.Seed })
	pick("transport", func() { base.Transport = flags.Transport })
	return base
}

// loadCA reads a PEM file of certificates to trust.
func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-tls-ca %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// errHelp is returned for -h: usage was printed, exit 0.
var errHelp = flag.ErrHelp

func isHelp(err error) bool { return errors.Is(err, errHelp) }

// parseRelays fills cfg.Relays and cfg.RelayPIDs from -relays and
// -relay-pids (Run checks the URLs and that the counts match).
func parseRelays(cfg *loadtest.Config, relays, pids string) error {
	for _, u := range strings.Split(relays, ",") {
		if u = strings.TrimSpace(u); u != "" {
			cfg.Relays = append(cfg.Relays, u)
		}
	}
	for _, p := range strings.Split(pids, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pid, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("-relay-pids %q: want comma-separated PIDs", pids)
		}
		cfg.RelayPIDs = append(cfg.RelayPIDs, pid)
	}
	return nil
}
