package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	t.Cleanup(srv.Close)

	tests := []struct {
		name     string
		method   string
		path     string
		status   int
		typ      string // Content-Type prefix
		contains string // in the body
	}{
		{name: "root is index.html", path: "/", status: 200, typ: "text/html", contains: `<script type="module" src="app.js">`},
		{name: "root with a query", path: "/?room=demo&role=guest", status: 200, typ: "text/html"},
		{name: "index.html by name", path: "/index.html", status: 200, typ: "text/html"},
		{name: "app.js", path: "/app.js", status: 200, typ: "text/javascript", contains: "RelayClient"},
		{name: "client.js", path: "/client.js", status: 200, typ: "text/javascript", contains: "export class RelayClient"},
		{name: "pk.js", path: "/pk.js", status: 200, typ: "text/javascript", contains: "export function createPK"},
		{name: "style.css", path: "/style.css", status: 200, typ: "text/css"},
		{name: "favicon.svg", path: "/favicon.svg", status: 200, typ: "image/svg+xml"},
		{name: "HEAD", method: http.MethodHead, path: "/app.js", status: 200, typ: "text/javascript"},
		{name: "missing file", path: "/nope.js", status: 404},
		{name: "no directory under static", path: "/static/", status: 404},
		{name: "no escape from static", path: "/%2e%2e/web.go", status: 404},
		{name: "POST", method: http.MethodPost, path: "/", status: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req, err := http.NewRequest(method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != 200 {
				return
			}
			if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, tt.typ) {
				t.Errorf("Content-Type = %q, want %s…", got, tt.typ)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", got)
			}
			if !strings.Contains(string(body), tt.contains) {
				t.Errorf("body does not contain %q", tt.contains)
			}
		})
	}
}

func TestHandlerRevalidates(t *testing.T) {
	h := Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/client.js", nil))
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req := httptest.NewRequest(http.MethodGet, "/client.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("status with If-None-Match = %d, want 304", rec.Code)
	}
}

func staticFiles(t *testing.T) map[string][]byte {
	t.Helper()
	root, err := fs.Sub(static, "static")
	if err != nil {
		t.Fatal(err)
	}
	files := make(map[string][]byte)
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(root, name)
		files[name] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestStaticFilesAreUTF8(t *testing.T) {
	for name, data := range staticFiles(t) {
		t.Run(name, func(t *testing.T) {
			if !utf8.Valid(data) {
				t.Error("not valid UTF-8")
			}
		})
	}
}

var refAttr = regexp.MustCompile(`(?i)\s(?:src|href)\s*=\s*(?:"([^"]*)"|'([^']*)')`)

func TestIndexReferencesExist(t *testing.T) {
	files := staticFiles(t)
	index, ok := files["index.html"]
	if !ok {
		t.Fatal("no index.html")
	}
	matches := refAttr.FindAllStringSubmatch(string(index), -1)
	if len(matches) == 0 {
		t.Fatal("index.html references no files")
	}
	for _, m := range matches {
		ref := m[1] + m[2]
		t.Run(ref, func(t *testing.T) {
			// The page must work offline: nothing from another origin.
			if strings.Contains(ref, "//") || strings.Contains(ref, ":") {
				t.Fatalf("%q is not a local file", ref)
			}
			name := strings.TrimPrefix(strings.SplitN(ref, "?", 2)[0], "./")
			name = strings.TrimPrefix(name, "/")
			if _, ok := files[name]; !ok {
				t.Errorf("%q does not exist in static/", ref)
			}
		})
	}
}

var importFrom = regexp.MustCompile(`(?m)^\s*import\s[^;]*?from\s+"([^"]+)"`)

// The modules import one another by relative path; a typo there is a blank
// page with no Go test failing, so check those too.
func TestModuleImportsExist(t *testing.T) {
	files := staticFiles(t)
	for name, data := range files {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		for _, m := range importFrom.FindAllStringSubmatch(string(data), -1) {
			ref := m[1]
			if !strings.HasPrefix(ref, "./") {
				t.Errorf("%s imports %q: only ./ relative imports work without a build step", name, ref)
				continue
			}
			if _, ok := files[strings.TrimPrefix(ref, "./")]; !ok {
				t.Errorf("%s imports %q, which does not exist", name, ref)
			}
		}
	}
}
