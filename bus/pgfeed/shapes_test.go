package pgfeed_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
)

type uuidRow struct {
	ID   string `db:"id,pk"`
	Name string `db:"name"`
}

func (uuidRow) TableName() string { return "uuids" }

// TestFeedMessageShapes: what one transaction's messages name — keys,
// a whole table, or the whole database.
func TestFeedMessageShapes(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE many (id bigint PRIMARY KEY, v int)`,
		`INSERT INTO many SELECT g, 0 FROM generate_series(1, 300) g`,
		`CREATE TABLE decimals (id numeric PRIMARY KEY, v int)`, `INSERT INTO decimals VALUES (1.5, 0)`,
		`CREATE TABLE uuids (id uuid PRIMARY KEY, name text)`,
		`INSERT INTO uuids VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'u')`,
		`CREATE TABLE pairs (a bigint, b text, v int, PRIMARY KEY (a, b))`, `INSERT INTO pairs VALUES (1, 'x', 0)`)
	tables := []string{"many", "decimals", "uuids", "pairs"}
	for i := range 65 {
		name := fmt.Sprintf("t%02d", i)
		e.exec(`CREATE TABLE ` + name + ` (id bigint PRIMARY KEY)`)
		tables = append(tables, name)
	}
	tp := &tap{Feed: e.feed("feed_shapes", tables)}
	msgs := make(chan bus.Message, 1024)
	tp.onMessage(func(m bus.Message) { msgs <- m })
	db := e.open("feed_shapes", idmap.WithSource(tp))
	waitUntil(t, "the feed listens", func() bool { return listening(db) })
	ctx := context.Background()

	// next returns the messages of the next transaction (they come
	// together, at its commit).
	next := func() []bus.Message {
		t.Helper()
		var out []bus.Message
		select {
		case m := <-msgs:
			out = append(out, m)
		case <-time.After(waitFor):
			t.Fatal("no message")
		}
		for {
			select {
			case m := <-msgs:
				out = append(out, m)
			case <-time.After(200 * time.Millisecond):
				return out
			}
		}
	}
	one := func(what string, want func(m bus.Message) bool) {
		t.Helper()
		got := next()
		if len(got) != 1 || !want(got[0]) {
			t.Fatalf("%s: messages %+v", what, got)
		}
	}

	e.exec(`UPDATE many SET v = 1 WHERE id <= 3`)
	one("three rows", func(m bus.Message) bool {
		keys := slices.Clone(m.Keys)
		slices.SortFunc(keys, func(a, b any) int { return int(a.(int64) - b.(int64)) })
		return m.Table == "many" && fmt.Sprint(keys) == "[1 2 3]" && slices.Equal(m.Columns, []string{"id"}) && m.DB == "feed_shapes"
	})
	e.exec(`UPDATE many SET v = 2`)
	one("300 rows: the whole table", func(m bus.Message) bool { return m.Table == "many" && len(m.Keys) == 0 })
	e.exec(`UPDATE decimals SET v = 1`)
	one("a numeric key: the whole table", func(m bus.Message) bool { return m.Table == "decimals" && len(m.Keys) == 0 })
	e.exec(`UPDATE pairs SET v = 1`)
	one("a composite key", func(m bus.Message) bool {
		return m.Table == "pairs" && len(m.Keys) == 1 && fmt.Sprint(m.Keys[0]) == "[1 x]" && slices.Equal(m.Columns, []string{"a", "b"})
	})

	// A uuid key expires the row of a type keyed by a string.
	u, err := idmap.Get[uuidRow](ctx, db, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")
	if err != nil {
		t.Fatal(err)
	}
	if idmap.Cached[uuidRow](ctx, db, u.ID) == nil {
		t.Fatal("not served from the map")
	}
	e.exec(`UPDATE uuids SET name = 'v'`)
	one("a uuid key", func(m bus.Message) bool { return m.Table == "uuids" && len(m.Keys) == 1 })
	waitUntil(t, "the uuid row expires", func() bool { return idmap.Cached[uuidRow](ctx, db, u.ID) == nil })

	// 65 tables in one transaction: the whole database.
	var stmts []string
	for i := range 65 {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO t%02d VALUES (1)", i))
	}
	e.exec("BEGIN; " + strings.Join(stmts, "; ") + "; COMMIT")
	one("65 tables", func(m bus.Message) bool { return m.Table == "" })
}
