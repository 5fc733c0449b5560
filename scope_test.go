package idmap_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/signals"
)

// Row "loaded once and shared until the request ends": canonical pointers,
// and a scope per request with Middleware.
func TestMiddlewareScopePerRequest(t *testing.T) {
	db := openSQLite(t)
	seedUsers(t, db, 1)
	var mu sync.Mutex
	var seen []*User
	h := idmap.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := idmap.Get[User](r.Context(), db, 1)
		if err != nil {
			t.Error(err)
			return
		}
		b := queryUsers(t, r.Context(), db, "SELECT id, name, email FROM users")[0]
		if a != b {
			t.Error("two loads in one request gave two objects")
		}
		mu.Lock()
		seen = append(seen, a)
		mu.Unlock()
	}))
	var ends []signals.Flush
	defer signals.PostFlush.Connect(func(f signals.Flush) {
		if f.Reason == signals.RequestEnd {
			mu.Lock()
			ends = append(ends, f)
			mu.Unlock()
		}
	})()
	for range 2 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}
	if len(seen) != 2 || seen[0] == seen[1] {
		t.Errorf("two requests shared an object: %v", seen)
	}
	if len(ends) != 2 || !ends[0].Scoped || ends[0].DB != "" {
		t.Errorf("RequestEnd flushes: got %+v; want 2, scoped, every database", ends)
	}
	if c := idmap.Cached[User](context.Background(), db, 1); c != nil {
		t.Errorf("a request scope wrote to the shared map")
	}
}
