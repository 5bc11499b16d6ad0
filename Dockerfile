# Lianmai Relay: a static relay binary (cgo, libopus linked in statically
# for the audience mix) on a distroless base.
#   docker build -t lianmai-relay .
#   docker run --rm -p 8080:8080 -p 50000:50000/udp -p 50000:50000/tcp lianmai-relay -announce-ip <public IP>
#   docker stop -t 30 <container>   # SIGTERM drains for up to -drain-timeout (20 s)
FROM golang:1.26-bookworm AS build
# libopus-dev ships libopus.a; pkg-config finds it; file checks the result.
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev pkg-config libopus-dev file \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Fails if the binary came out dynamic: distroless/static has no libc.
RUN scripts/build-relay.sh /out/relay

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/relay /relay
USER nonroot:nonroot
# HTTP: the page, the WebSocket at /ws, /metrics, /healthz, /readyz.
EXPOSE 8080/tcp
# UDP: all WebRTC media, one port for every peer.
EXPOSE 50000/udp
# TCP: ICE-TCP media for clients whose networks block UDP (-tcp; the same
# port number as -udp unless set).
EXPOSE 50000/tcp
ENV RELAY_HTTP=:8080 RELAY_UDP=:50000
# SIGTERM (docker stop) drains: /readyz fails, clients are told to move.
STOPSIGNAL SIGTERM
# relay health reads the relay's flags from process 1's command line.
HEALTHCHECK --interval=10s --timeout=4s --start-period=5s --retries=3 CMD ["/relay", "health"]
ENTRYPOINT ["/relay"]
