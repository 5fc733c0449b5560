package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/go-idmap/idmap"
)

// TestService runs the service's routes as clients would, many at once (run
// it with -race: no handler writes an object another request reads), and
// checks that a committed rename is what every later request sees.
func TestService(t *testing.T) {
	db, err := open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv := httptest.NewServer((&server{db: db}).handler())
	defer srv.Close()

	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	post := func(path, name string) (int, string) {
		t.Helper()
		res, err := http.PostForm(srv.URL+path, url.Values{"name": {name}})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	if code, body := get("/users"); code != 200 || body != "1 ada\n2 grace\n3 edsger\n" {
		t.Fatalf("GET /users = %d %q", code, body)
	}
	if code, _ := get("/users/9"); code != http.StatusNotFound {
		t.Fatalf("GET /users/9 = %d; want 404", code)
	}

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if i%4 == 0 {
					post("/users/2", "grace")
				} else {
					get("/users/2")
					get("/users")
				}
			}
		}()
	}
	wg.Wait()

	if code, body := post("/users/1", "bea"); code != 200 || body != "1 bea\n" {
		t.Fatalf("POST /users/1 = %d %q", code, body)
	}
	// The commit expired key 1 in every map: no request sees "ada" again.
	if code, body := get("/users/1"); code != 200 || body != "1 bea\n" {
		t.Fatalf("GET /users/1 after the rename = %d %q", code, body)
	}
	if _, body := get("/users"); !strings.HasPrefix(body, "1 bea\n") {
		t.Fatalf("GET /users after the rename = %q", body)
	}
}

// TestOneObjectPerRowInARequest: inside a request's scope, the list and Get
// return one pointer per row, so a temporary field set on one is seen on
// the other.
func TestOneObjectPerRowInARequest(t *testing.T) {
	db, err := open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := idmap.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		users, err := idmap.Query[User](ctx, db, "SELECT id, name FROM users ORDER BY id")
		if err != nil {
			t.Error(err)
			return
		}
		users[0].Views = 7
		u, err := idmap.Get[User](ctx, db, 1)
		if err != nil {
			t.Error(err)
			return
		}
		if u != users[0] || u.Views != 7 {
			t.Errorf("Get in the request's scope = %p (views %d); want the listed %p (views 7)", u, u.Views, users[0])
		}
		// Without the request's context the rows go to the shared map:
		// another object for the same row (README: which map a query binds
		// into depends on its context).
		shared, err := idmap.Get[User](context.Background(), db, 1)
		if err != nil {
			t.Error(err)
			return
		}
		if shared == u {
			t.Error("the shared map's object is the request's")
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}
