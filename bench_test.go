package idmap_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/ngrok/sqlmw"

	"github.com/go-idmap/idmap"
)

// Benchmarks of the hot paths with no dependency beyond the drivers the
// tests use. The side-by-side comparison with sqlx and scany lives in the
// bench module.

// benchDB returns an idmap database and a plain one on the same new SQLite
// file of n users, and the file's DSN.
func benchDB(b *testing.B, n int) (db, plain *sql.DB, dsn string) {
	b.Helper()
	dsn = "file:" + filepath.Join(b.TempDir(), "bench.db") + "?_journal_mode=WAL"
	db, err := sql.Open("idmap+sqlite3", dsn)
	if err != nil {
		b.Fatal(err)
	}
	plain, err = sql.Open("sqlite3", dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close(); plain.Close() })
	seedUsers(b, db, n)
	return db, plain, dsn
}

var registerNull sync.Once

// BenchmarkPointQuery compares, on one point query, the plain driver, the
// plain driver behind sqlmw with a NullInterceptor (what sqlmw costs by
// itself), and idmap. The sides alternate within one loop, so that a burst
// of load on this shared machine falls on all of them alike.
func BenchmarkPointQuery(b *testing.B) {
	registerNull.Do(func() {
		sql.Register("sqlite3-sqlmw-null", sqlmw.Driver(&sqlite3.SQLiteDriver{}, sqlmw.NullInterceptor{}))
	})
	db, plain, dsn := benchDB(b, 100)
	null, err := sql.Open("sqlite3-sqlmw-null", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	dbs := []*sql.DB{plain, null, db}
	names := []string{"plain", "sqlmwNull", "idmap"}
	var total [3]time.Duration
	var u User
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for k := range dbs {
			j := (i + k) % len(dbs)
			t0 := time.Now()
			if err := dbs[j].QueryRow("SELECT id, name, email FROM users WHERE id = ?", 42).Scan(&u.ID, &u.Name, &u.Email); err != nil {
				b.Fatal(err)
			}
			total[j] += time.Since(t0)
		}
	}
	for j, n := range names {
		b.ReportMetric(float64(total[j].Nanoseconds())/float64(b.N), n+"-ns/op")
	}
}

func BenchmarkSelect100(b *testing.B) {
	db, plain, _ := benchDB(b, 100)
	const q = "SELECT id, name, email FROM users"
	b.Run("handScan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rows, err := plain.Query(q)
			if err != nil {
				b.Fatal(err)
			}
			var us []*User
			for rows.Next() {
				u := new(User)
				if err := rows.Scan(&u.ID, &u.Name, &u.Email); err != nil {
					b.Fatal(err)
				}
				us = append(us, u)
			}
			rows.Close()
			sinkUsers = us
		}
	})
	bind := func(b *testing.B, ctx func() context.Context) {
		b.ReportAllocs()
		for b.Loop() {
			rows, err := db.QueryContext(ctx(), q)
			if err != nil {
				b.Fatal(err)
			}
			var us []*User
			if err := idmap.Bind(rows, &us); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("bindCold", func(b *testing.B) { bind(b, func() context.Context { return idmap.NewContext(context.Background()) }) })
	warm := idmap.NewContext(context.Background())
	b.Run("bindWarm", func(b *testing.B) { bind(b, func() context.Context { return warm }) })
	var keep []*User
	b.Run("bindSharedWarm", func(b *testing.B) {
		keep = queryUsers(b, context.Background(), db, q)
		bind(b, context.Background)
	})
	_ = keep
}

func BenchmarkGet(b *testing.B) {
	db, _, _ := benchDB(b, 100)
	ctx := idmap.NewContext(context.Background())
	u, _ := idmap.Get[User](ctx, db, 42)
	b.Run("hitScope", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := idmap.Get[User](ctx, db, 42); err != nil {
				b.Fatal(err)
			}
		}
	})
	s, _ := idmap.Get[User](context.Background(), db, 42)
	b.Run("hitShared", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := idmap.Get[User](context.Background(), db, 42); err != nil {
				b.Fatal(err)
			}
		}
	})
	_ = fmt.Sprint(u, s)
}

// sinkUsers keeps what a hand-written loop scanned alive, as Bind's result
// is, so that the compiler drops neither.
var sinkUsers []*User
