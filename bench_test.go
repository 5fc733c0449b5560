package idmap_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/go-idmap/idmap"
)

// Benchmarks of the hot paths with no dependency beyond the drivers the
// tests use. The side-by-side comparison with sqlx and scany lives in the
// bench module.

func benchDB(b *testing.B, n int) (*sql.DB, *sql.DB) {
	b.Helper()
	dsn := "file:" + filepath.Join(b.TempDir(), "bench.db") + "?_journal_mode=WAL"
	db, err := sql.Open("idmap+sqlite3", dsn)
	if err != nil {
		b.Fatal(err)
	}
	plain, err := sql.Open("sqlite3", dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close(); plain.Close() })
	seedUsers(b, db, n)
	return db, plain
}

func BenchmarkPointQuery(b *testing.B) {
	db, plain := benchDB(b, 100)
	for _, c := range []struct {
		name string
		db   *sql.DB
	}{{"plain", plain}, {"idmap", db}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var u User
			for b.Loop() {
				if err := c.db.QueryRow("SELECT id, name, email FROM users WHERE id = ?", 42).Scan(&u.ID, &u.Name, &u.Email); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSelect100(b *testing.B) {
	db, plain := benchDB(b, 100)
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
	db, _ := benchDB(b, 100)
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
