// Package report is the reporting side of the load generator: the Report
// a run produces (its JSON form is what `loadtest -json` writes and what
// saved benchmark reports, loadtest/bench.sh and loadtest/soak.sh read),
// the figures derived from what package loadtest measured (Build,
// NewSample), the histograms and distributions behind them, and the
// summary table and self-contained HTML page written from it.
//
// It measures nothing: no network, no /proc, no clock. Package loadtest
// takes the measurements (Snapshot, Metrics, Measurements) and imports
// this package, never the reverse, so a report can be read, summarized
// and drawn without the cgo and pion dependencies of the peers.
// docs/loadtest.md describes every figure.
package report
