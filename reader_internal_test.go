package idmap

import (
	"database/sql/driver"
	"testing"

	"github.com/go-idmap/idmap/classify"
)

// Column names are compared as each engine compares them.
func TestColumnRules(t *testing.T) {
	cases := []struct {
		rule      colRule
		cols      []string
		col       string
		wantIndex int
	}{
		{colsExact, []string{"Id", "id"}, "id", 1},
		{colsExact, []string{"Id"}, "id", -1},
		{colsASCII, []string{"ID"}, "id", 0},
		{colsASCII, []string{"É"}, "é", -1}, // SQLite folds ASCII only
		{colsFold, []string{"ID"}, "id", 0},
		{colsFold, []string{"É"}, "é", 0},
	}
	for _, c := range cases {
		if got := (resolver{cols: c.rule}).index(c.cols, c.col); got != c.wantIndex {
			t.Errorf("rule %d: index(%q, %q) = %d; want %d", c.rule, c.cols, c.col, got, c.wantIndex)
		}
	}
}

// Views are bounded by their definitions: one that reaches a writing
// function (through other views too), or whose definition is unknown, is
// unbounded; names resolve by database where the catalogue is qualified.
func TestBoundViews(t *testing.T) {
	row := func(vs ...string) []driver.Value {
		out := make([]driver.Value, len(vs))
		for i, v := range vs {
			out[i] = []byte(v)
		}
		return out
	}
	si := &schemaInfo{known: true, qualified: true, writers: map[string]bool{}, unbounded: map[string]bool{}}
	si.markUnbounded("app.bump")
	si.boundViews(dialectMySQL, [][]driver.Value{
		row("app.v1", "select `app`.`bump`(`t`.`id`) AS `b` from `app`.`t`"),
		row("app.v2", "select `v1`.`b` AS `b` from `app`.`v1`"),
		row("app.v3", "select `t`.`id` AS `id` from `app`.`t`"),
		row("app.secret", ""),
		row("other.v4", "select bump(1) AS b"), // other.bump does not exist
	})
	for _, c := range []struct {
		sql, cur string
		want     bool
	}{
		{"SELECT * FROM v1", "app", true},
		{"SELECT * FROM app.v2", "", true},
		{"SELECT * FROM v2", "app", true},
		{"SELECT * FROM v3", "app", false},
		{"SELECT * FROM secret", "app", true},
		{"SELECT * FROM v4", "other", false},
		{"SELECT * FROM v1", "other", false},
		{"SELECT * FROM v1", "", true}, // current database unknown: every database
		{"SELECT app.bump(1)", "other", true},
	} {
		st := classify.Classify(classify.MySQL, c.sql)
		if got := si.mentionsUnbounded(st, c.cur); got != c.want {
			t.Errorf("%q in %q: unbounded = %v; want %v", c.sql, c.cur, got, c.want)
		}
	}
}

// effects.unbounded marks what the reader widened for lack of knowledge,
// and only that: a change feed waits on it.
func TestEffectsUnbounded(t *testing.T) {
	db := &database{dialect: dialectSQLite}
	si := &schemaInfo{known: true, actions: map[string][]string{}, inherit: map[string][]string{},
		triggers: map[string]bool{"audited": true}, writers: map[string]bool{}, unbounded: map[string]bool{}}
	si.markUnbounded("bump")
	db.schema.Store(si)
	for _, c := range []struct {
		sql       string
		unbounded bool
	}{
		{"CALL p()", true},                 // not understood
		{"SELECT bump(1)", true},           // a writing function
		{"UPDATE audited SET x = 1", true}, // triggers nothing declares
		{"UPDATE plain SET x = 1 WHERE id = 1", false},
		{"DELETE FROM plain", false},            // the table: bounded
		{"CREATE TABLE t2 (id INTEGER)", false}, // a schema change
	} {
		e := db.effectsOf(classify.Classify(classify.SQLite, c.sql), nil, "")
		if e.unbounded != c.unbounded || e.unbounded && !e.all {
			t.Errorf("%q: unbounded = %v, all = %v; want unbounded = %v", c.sql, e.unbounded, e.all, c.unbounded)
		}
	}
}
