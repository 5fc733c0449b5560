package idmap

import (
	"reflect"
	"testing"
)

// BenchmarkNoteUnscopedBind measures what a Bind outside a scope pays for
// the debug record of query.go, against a loop that calls nothing: before
// the database has seen a scope, and after, without a Logger.
func BenchmarkNoteUnscopedBind(b *testing.B) {
	db, err := newDatabase("bench-note-unscoped", dialectSQLite, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := &rows{db: db}
	m := modelOf(reflect.TypeFor[struct{ ID int64 }]())
	b.Run("reference", func(b *testing.B) {
		for b.Loop() {
		}
	})
	b.Run("noScopeSeen", func(b *testing.B) {
		for b.Loop() {
			noteUnscopedBind(r, m)
		}
	})
	db.sawScope.Store(true)
	b.Run("scopeSeenNoLogger", func(b *testing.B) {
		for b.Loop() {
			noteUnscopedBind(r, m)
		}
	})
}
