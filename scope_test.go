package idmap_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/signals"
)

// SPEC's django-idmap table, row "loaded once and shared until the request
// ends": canonical pointers, and a scope per request with Middleware.
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

// A database whose queries have run in scopes logs, at level Debug, rows
// bound outside one.
func TestUnscopedBindLogged(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db, _ := openCounted(t, idmap.Name("unscoped-"+t.Name()), idmap.Logger(logger))
	seedUsers(t, db, 2)
	read := func() string { mu.Lock(); defer mu.Unlock(); return buf.String() }
	const msg = `msg="idmap: rows bound outside a scope"`

	queryUsers(t, context.Background(), db, "SELECT id, name, email FROM users")
	require.NotContains(t, read(), msg, "no scope seen yet: nothing logged")

	ctx := idmap.NewContext(context.Background())
	queryUsers(t, ctx, db, "SELECT id, name, email FROM users")
	require.NotContains(t, read(), msg, "a scoped query is not logged")
	tx, err := db.BeginTx(context.Background(), nil)
	require.NoError(t, err)
	queryUsers(t, context.Background(), tx, "SELECT id, name, email FROM users")
	require.NoError(t, tx.Rollback())
	require.NotContains(t, read(), msg, "a transaction's own scope is a scope")

	queryUsers(t, context.Background(), db, "SELECT id, name, email FROM users")
	require.Contains(t, read(), msg+" db=unscoped-TestUnscopedBindLogged type=idmap_test.User table=users")
}
