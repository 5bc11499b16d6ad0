// Package loadtest is the relay's load generator: synthetic co-streaming
// participants that speak signaling protocol v1 through package client,
// publish real Opus (package opusgen) paced by a monotonic clock, and
// measure what a listener would feel (join latency, one-way latency, loss,
// late frames, stutter) and what the relay spent to deliver it (CPU per
// forwarded packet, GC pauses, RSS) from its /metrics and /proc.
//
// Run takes a Scenario (rooms, roles, join ramp, duration, churn, mic
// cycling, injected loss and jitter) and a Config (where the relay is) and
// returns a report.Report; cmd/loadtest is its command line.
// docs/loadtest.md describes every figure.
//
// This package measures; package report (loadtest/report) turns the
// measurements into figures and writes them. Each run's counters are read
// into report.Snapshots (the relay's /metrics, parsed by expfmt, and
// /proc), its tallies into report.Measurements, and report.Build does the
// arithmetic.
//
// Injected loss happens by default on each publisher's uplink (uplink.go):
// an interceptor between pion's NACK responder and the wire drops packets
// the responder has kept, so the relay's NACKs can repair them as they
// would a network loss.
//
// Every measurement is taken inside this process: a publisher stamps each
// frame's send time in a per-publisher log (frameLog), and a receiver
// matches an arriving packet to it by (publisher participant id = RTP
// stream id, RTP timestamp), which the relay forwards unchanged. Payloads
// carry nothing but Opus. The audience mix (stream id "mix", join's
// listen "mix") carries the mixer's own timestamps, which no frame log
// matches: it is measured against its own clock (mixstream.go) and
// reported as a class of its own.
//
// This package uses cgo (hraban/opus through opusgen): build with
// -tags nolibopusfile. The relay binary never imports it.
package loadtest
