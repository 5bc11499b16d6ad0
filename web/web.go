// Package web serves the relay's browser page: plain HTML, CSS and ES
// modules embedded in the binary, with no build step and nothing fetched
// from elsewhere, so the page works offline against a local relay.
//
// The page connects to the relay's WebSocket at /ws on its own origin.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// contentTypes fixes the types of the page's own files, so that they do not
// depend on the host's mime.types (which may, say, call .js
// application/x-javascript).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
}

// file is one embedded file, read once when the handler is built.
type file struct {
	data        []byte
	contentType string
	etag        string
}

// Handler serves the embedded page at "/": index.html at "/", every other
// file at its own name. Responses carry Cache-Control: no-cache and an
// ETag, so a browser revalidates (cheaply) and never runs a stale page
// against a newer relay.
func Handler() http.Handler {
	files, err := load()
	if err != nil {
		// Cannot happen with a correct embed; fail loudly per request
		// rather than take the process down.
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "web: "+err.Error(), http.StatusInternalServerError)
		})
	}
	return &handler{files: files}
}

func load() (map[string]file, error) {
	root, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	files := make(map[string]file)
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		files[name] = file{
			data:        data,
			contentType: typeOf(name),
			etag:        `"` + hex.EncodeToString(sum[:12]) + `"`,
		}
		return nil
	})
	return files, err
}

func typeOf(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := contentTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

type handler struct {
	files map[string]file // read-only after Handler returns
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	f, ok := h.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", f.etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	// ServeContent answers If-None-Match with 304, HEAD and Range requests.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.data))
}
