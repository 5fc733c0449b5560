// Command service is the HTTP service of issue 17, written as a new user
// of idmap would write it: a scope per request (idmap.Middleware), a list,
// a detail, and an update in a transaction, on embedded SQLite.
//
//	go run ./examples/service          # listens on 127.0.0.1:8080
//	curl 127.0.0.1:8080/users
//	curl 127.0.0.1:8080/users/1
//	curl -X POST -d name=bea 127.0.0.1:8080/users/1
//
// Three rules carry the whole service:
//
//   - every query takes the request's context (r.Context()): inside
//     Middleware that is what binds its rows into the request's scope, so
//     that the list and Get return one pointer per row;
//   - objects of a scope belong to its request: the handler may change
//     them; objects of the shared map (no scope) are never written;
//   - a row is changed in a transaction (or in a scope) and written with
//     the handler's own SQL: the commit expires the row in every map.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	_ "github.com/mattn/go-sqlite3"

	"github.com/go-idmap/idmap"
)

// User is a mapped type: TableName names its table, the column "id" is its
// key. Views is a temporary field, kept on the object while it lives.
type User struct {
	ID    int64  `db:"id"`
	Name  string `db:"name"`
	Views int    `db:"-"`
}

func (User) TableName() string { return "users" }

// server holds the database; its handlers are safe for concurrent use.
type server struct{ db *sql.DB }

// handler is the service's routes, each request in a scope of its own.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users", s.list)
	mux.HandleFunc("GET /users/{id}", s.detail)
	mux.HandleFunc("POST /users/{id}", s.rename)
	return idmap.Middleware(mux)
}

// list writes every user. The rows go into the request's scope, because
// the query runs with the request's context.
func (s *server) list(w http.ResponseWriter, r *http.Request) {
	users, err := idmap.Query[User](r.Context(), s.db, "SELECT id, name FROM users ORDER BY id")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for _, u := range users {
		fmt.Fprintf(w, "%d %s\n", u.ID, u.Name)
	}
}

// detail writes one user. Get answers from the request's scope when the
// row is there; the object is the request's, so counting a view on it is
// safe (and seen by every other use of that row in the request).
func (s *server) detail(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "bad id", http.StatusBadRequest)
		return
	}
	u, err := idmap.Get[User](r.Context(), s.db, id)
	if errors.Is(err, sql.ErrNoRows) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	u.Views++
	fmt.Fprintf(w, "%d %s\n", u.ID, u.Name)
}

// rename changes a user's name in a transaction: the row is read and
// written in it, and the commit expires the key in every map, so the next
// Get of any request loads the new name.
func (s *server) rename(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "bad id", http.StatusBadRequest)
		return
	}
	name := r.FormValue("name")
	if name == "" {
		http.Error(w, "name is empty", http.StatusBadRequest)
		return
	}
	err = s.renameTx(r.Context(), id, name)
	if errors.Is(err, sql.ErrNoRows) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "%d %s\n", id, name)
}

func (s *server) renameTx(ctx context.Context, id int64, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after Commit: sql.ErrTxDone, ignored
	// In a transaction, QueryOne reads the row as the transaction sees it
	// (on MySQL or PostgreSQL, add FOR UPDATE to lock it).
	u, err := idmap.QueryOne[User](ctx, tx, "SELECT id, name FROM users WHERE id = ?", id)
	if err != nil {
		return err
	}
	u.Name = name
	if _, err := tx.ExecContext(ctx, "UPDATE users SET name = ? WHERE id = ?", u.Name, u.ID); err != nil {
		return err
	}
	return tx.Commit()
}

// open opens the database in dir through idmap, with a few users.
func open(dir string) (*sql.DB, error) {
	db, err := sql.Open("idmap+sqlite3", "file:"+filepath.Join(dir, "service.db")+"?_journal_mode=WAL&_busy_timeout=5000")
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
		INSERT OR IGNORE INTO users (id, name) VALUES (1, 'ada'), (2, 'grace'), (3, 'edsger')`); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func main() {
	dir, err := os.MkdirTemp("", "idmap-service-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	addr := "127.0.0.1:8080"
	if a := os.Getenv("ADDR"); a != "" {
		addr = a
	}
	log.Printf("listening on %s", addr)
	log.Print(http.ListenAndServe(addr, (&server{db: db}).handler()))
}
