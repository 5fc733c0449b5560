package importcheck

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-idmap/idmap"
)

// Importing idmap registers nothing on http.DefaultServeMux: in
// particular not expvar's /debug/vars (idmap does not import expvar; the
// program publishes its statistics on request, with package idmapexpvar).
// This package's test binary imports only idmap and the standard library's
// net/http, so a handler found here was registered by idmap or by what it
// imports.
func TestImportRegistersNoHandler(t *testing.T) {
	_ = idmap.AllStats()
	for _, path := range []string{"/debug/vars", "/debug/pprof/", "/debug/idmap", "/"} {
		_, pattern := http.DefaultServeMux.Handler(httptest.NewRequest("GET", path, nil))
		if pattern != "" {
			t.Errorf("importing idmap registered %q on http.DefaultServeMux", pattern)
		}
	}
}
