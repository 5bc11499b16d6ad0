package server

import (
	"io"
	"net/http"

	"github.com/lianmai/relay/web"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes is the relay's HTTP surface.
func (r *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /ws", r.sig)
	wh := r.whip.Handler() // WHIP (publishing) and WHEP (playing): package whip
	mux.Handle("/whip/", wh)
	mux.Handle("/whep/", wh)
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if r.draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if err := r.sig.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("/", web.Handler())
	return mux
}
