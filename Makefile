# --- Benchmark (loadtest): see docs/loadtest.md ----------------------------
.PHONY: bench bench-build loadtest-test

# Builds the relay and the load generator, runs the documented scenarios
# (loadtest/scenarios: headline, costreaming) BENCH_RUNS times each with the
# relay on CPU 0 and the load generator on CPU 1, prints the medians.
bench:
	loadtest/bench.sh

# Builds bin/relay (static, libopus linked in) and bin/loadtest (cgo: libopus).
bench-build:
	scripts/build-relay.sh bin/relay
	go build -tags nolibopusfile -o bin/loadtest ./cmd/loadtest

# The load generator's tests, as CI runs them.
loadtest-test:
	go test -race -tags nolibopusfile ./loadtest/... ./cmd/loadtest/

# --- Build and test ---------------------------------------------------------
.PHONY: build test

# The static relay binary, as the Dockerfile builds it.
build:
	scripts/build-relay.sh bin/relay

# Every test, as CI runs it (README's test command).
test:
	scripts/test.sh

# --- Cluster: see docs/cluster.md ------------------------------------------
.PHONY: cluster

# A NATS server (embedded nats-server, nothing to install) and three relays
# on it, pages at http://localhost:8081, :8082, :8083; Ctrl-C stops them.
cluster:
	scripts/cluster.sh

# The cluster scenario against NATS and three relays (loadtest/cluster-bench.sh):
# the audience spread over the relays, figures per relay; docs/loadtest.md#clusters.
.PHONY: cluster-bench
cluster-bench:
	loadtest/cluster-bench.sh

# --- Soak (loadtest): see docs/loadtest.md ---------------------------------
.PHONY: soak

# The relay under half a core of load with churn and mic cycling for
# SOAK_DURATION (30m): fails if the live heap or goroutines leak (the 95%
# confidence interval of their slope over 5-minute window medians lies
# above 10% of their level per hour) or listeners lost anything; saves
# heap profiles to diff (SOAK_PROFILE=1).
soak:
	loadtest/soak.sh
