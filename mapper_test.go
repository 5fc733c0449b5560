package idmap_test

import (
	"context"
	"strings"
	"testing"

	"github.com/go-idmap/idmap"
)

// Tag is mapped by Model, not by a TableName method.
type Tag struct {
	Code  string `db:"code,pk"`
	Label string
}

func init() { idmap.Model[Tag](idmap.Table("tags")) }

// SPEC's django-idmap table, row "model opts in": a TableName method, or
// Model.
func TestOptInByTableNameAndModel(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	seedUsers(t, db, 2)
	mustExec(t, db, `CREATE TABLE tags (code TEXT PRIMARY KEY, label TEXT)`)
	mustExec(t, db, `INSERT INTO tags VALUES ('go', 'Go'), ('py', 'Python')`)

	a := queryUsers(t, ctx, db, "SELECT id, name, email FROM users WHERE id = 1")
	b := queryUsers(t, ctx, db, "SELECT * FROM users WHERE name = 'user1'")
	if a[0] != b[0] {
		t.Errorf("TableName type: got two objects for one row")
	}

	t1, err := idmap.Get[Tag](ctx, db, "go")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, "SELECT code, label FROM tags ORDER BY code")
	if err != nil {
		t.Fatal(err)
	}
	var tags []*Tag
	if err := idmap.Bind(rows, &tags); err != nil {
		t.Fatal(err)
	}
	if tags[0] != t1 || t1.Label != "Go" {
		t.Errorf("Model type: got %p %+v; want %p", tags[0], tags[0], t1)
	}
}

// Model panics, with an idmap: message, on an invalid type.
func TestModelPanicsOnInvalidType(t *testing.T) {
	for name, f := range map[string]func(){
		"not a struct": func() { idmap.Model[int]() },
		"no key":       func() { idmap.Model[struct{ Name string }](idmap.Table("x")) },
	} {
		func() {
			defer func() {
				r := recover()
				s, _ := r.(string)
				if !strings.HasPrefix(s, "idmap:") {
					t.Errorf("%s: got panic %v; want a message starting with idmap:", name, r)
				}
			}()
			f()
		}()
	}
}
