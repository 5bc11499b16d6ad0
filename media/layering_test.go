package media

import (
	"go/build"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportsNothingOfTheRoomLayer: the packet path knows nothing of rooms,
// participants or signaling. Walks the module's own imports from this
// package, tests included, and fails on any package above it.
func TestImportsNothingOfTheRoomLayer(t *testing.T) {
	const module = "github.com/lianmai/relay/"
	forbidden := []string{"sfu", "signaling", "server", "protocol", "auth", "web", "client", "loadtest", "cmd"}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var walk func(pkg string, from []string)
	walk = func(pkg string, from []string) {
		if seen[pkg] {
			return
		}
		seen[pkg] = true
		rel := strings.TrimPrefix(pkg, module)
		for _, f := range forbidden {
			if rel == f || strings.HasPrefix(rel, f+"/") {
				t.Errorf("media reaches %s: %s", pkg, strings.Join(append(from, pkg), " → "))
				return
			}
		}
		p, err := build.ImportDir(filepath.Join(root, filepath.FromSlash(rel)), 0)
		if err != nil {
			t.Fatalf("read %s: %v", pkg, err)
		}
		imports := p.Imports
		if pkg == module+"media" {
			imports = append(append(imports, p.TestImports...), p.XTestImports...)
		}
		for _, imp := range imports {
			if strings.HasPrefix(imp, module) {
				walk(imp, append(from, pkg))
			}
		}
	}
	walk(module+"media", nil)
	if !seen[module+"bufpool"] {
		t.Fatalf("the walk never reached bufpool, which media imports: it read nothing (seen %v)", seen)
	}
}
