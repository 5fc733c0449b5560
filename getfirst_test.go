package idmap_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/go-idmap/idmap"
)

// firstCaseUser is a family of integer-keyed types of one table: each
// instance is a type of its own, with a model and maps of its own.
type firstCaseUser[N any] struct {
	ID    int64  `db:"id"`
	Name  string `db:"name"`
	Email string `db:"email"`
}

func (firstCaseUser[N]) TableName() string { return "users" }

// TestGetFirstCase: Get's first case (an int64 key of an integer-keyed
// type, in the shared map, from a context with no values) serves hits with
// no query for more types than it keeps by place (eight), serves no old
// values after a write, and follows Model when it replaces a type's model.
func TestGetFirstCase(t *testing.T) {
	bg := context.Background()
	// The type whose model the test replaces, as it was (a second run in
	// one process, go test -count=2, finds it replaced).
	idmap.Model[firstCaseUser[[3]int]]()
	db, count := openCounted(t)
	seedUsers(t, db, 2)
	mustExec(t, db, "CREATE TABLE users_b (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL)")
	mustExec(t, db, "INSERT INTO users_b VALUES (1, 'from-b', 'b@example.com')")

	checks := []func(*testing.T, *sql.DB, *counter){
		firstCaseHits[[0]int], firstCaseHits[[1]int], firstCaseHits[[2]int],
		firstCaseHits[[3]int], firstCaseHits[[4]int], firstCaseHits[[5]int],
		firstCaseHits[[6]int], firstCaseHits[[7]int], firstCaseHits[[8]int],
		firstCaseHits[[9]int], firstCaseHits[[10]int],
	}
	objs := make([]*firstCaseUser[[0]int], 0, 1)
	for round := range 2 { // the second round: every type is known
		for _, check := range checks {
			check(t, db, count)
		}
		u, err := idmap.Get[firstCaseUser[[0]int]](bg, db, int64(1))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, u)
		if round == 1 && objs[0] != objs[1] {
			t.Fatal("two rounds gave two objects of one row")
		}
	}

	// Model replaces a known type's model: Get follows it (the old model's
	// map holds the old table's row).
	before, err := idmap.Get[firstCaseUser[[3]int]](bg, db, int64(1))
	if err != nil || before.Name != "user1" {
		t.Fatalf("before Model: %+v, %v", before, err)
	}
	idmap.Model[firstCaseUser[[3]int]](idmap.Table("users_b"))
	after, err := idmap.Get[firstCaseUser[[3]int]](bg, db, int64(1))
	if err != nil || after.Name != "from-b" {
		t.Fatalf("after Model: %+v, %v; want the row of users_b", after, err)
	}
	n := count.Queries()
	if again, err := idmap.Get[firstCaseUser[[3]int]](bg, db, int64(1)); err != nil || again != after {
		t.Fatalf("after Model, a second Get: %p, %v; want %p", again, err, after)
	}
	if q := count.Queries() - n; q != 0 {
		t.Errorf("a hit of the new model sent %d queries; want 0", q)
	}
}

// firstCaseHits loads user 2 as T, reads it again with an int64 and an
// int key (hits: no query, the same object), writes it through idmap and
// reads it again (the new value).
func firstCaseHits[N any](t *testing.T, db *sql.DB, count *counter) {
	t.Helper()
	type T = firstCaseUser[N]
	bg := context.Background()
	u, err := idmap.Get[T](bg, db, int64(2))
	if err != nil {
		t.Fatal(err)
	}
	n := count.Queries()
	for _, key := range []any{int64(2), 2} {
		if v, err := idmap.Get[T](bg, db, key); err != nil || v != u {
			t.Fatalf("%T: Get(%T): %p, %v; want %p", u, key, v, err, u)
		}
	}
	if q := count.Queries() - n; q != 0 {
		t.Errorf("%T: hits sent %d queries; want 0", u, q)
	}
	name := u.Name + "+"
	if _, err := db.ExecContext(bg, "UPDATE users SET name = ? WHERE id = 2", name); err != nil {
		t.Fatal(err)
	}
	if v, err := idmap.Get[T](bg, db, int64(2)); err != nil || v.Name != name {
		t.Fatalf("%T: after an update, Get gave %+v, %v; want name %q", u, v, err, name)
	}
}
