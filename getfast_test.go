package idmap_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"
	"weak"

	"github.com/go-idmap/idmap"
)

// NamedTag is keyed by a string column.
type NamedTag struct {
	Name  string `db:"name,pk"`
	Count int64  `db:"count"`
}

func (NamedTag) TableName() string { return "named_tags" }

// TestGetHitAllocs: a Get (or Cached) hit allocates nothing for integer
// and string keys of any value, in the shared map (weak and StrongRefs) and
// in a scope (issue 16). Before the typed hit path, an int64 key ≥ 256 cost 8 bytes.
func TestGetHitAllocs(t *testing.T) {
	bg := context.Background()
	db, id, name := allocsDB(t)
	sctx := idmap.NewContext(bg)
	ids, names := []int64{id}, []string{name}
	for _, ctx := range []context.Context{bg, sctx} {
		u, err := idmap.Get[User](ctx, db, id)
		if err != nil || u.ID != id {
			t.Fatalf("Get[User]: %v, %v", u, err)
		}
		s, err := idmap.Get[StrongUser](ctx, db, id)
		if err != nil || s.ID != id {
			t.Fatalf("Get[StrongUser]: %v, %v", s, err)
		}
		g, err := idmap.Get[NamedTag](ctx, db, name)
		if err != nil || g.Count != 3 {
			t.Fatalf("Get[NamedTag]: %v, %v", g, err)
		}
		for _, c := range []struct {
			name string
			get  func() bool
		}{
			{"weak int64", func() bool { v, err := idmap.Get[User](ctx, db, ids[0]+zero); return err == nil && v == u }},
			{"weak int", func() bool { v, err := idmap.Get[User](ctx, db, int(ids[0]+zero)); return err == nil && v == u }},
			{"strong int64", func() bool { v, err := idmap.Get[StrongUser](ctx, db, ids[0]+zero); return err == nil && v == s }},
			{"string", func() bool { v, err := idmap.Get[NamedTag](ctx, db, names[0]); return err == nil && v == g }},
			{"Cached int64", func() bool { return idmap.Cached[User](ctx, db, ids[0]+zero) == u }},
			{"Cached string", func() bool { return idmap.Cached[NamedTag](ctx, db, names[0]) == g }},
		} {
			if a := testing.AllocsPerRun(200, func() {
				if !c.get() {
					t.Fatal(c.name, ": not the same object")
				}
			}); a != 0 {
				t.Errorf("%s key, scope %v: %v allocations per Get hit; want 0", c.name, ctx != bg, a)
			}
		}
	}
}

// allocsDB returns a database of two users, one with the key id (past the
// integers that Go boxes without allocating), and a named_tags table with
// the row of key name (a string made at run time).
func allocsDB(t *testing.T) (db *sql.DB, id int64, name string) {
	db = openSQLite(t)
	seedUsers(t, db, 2)
	mustExec(t, db, "UPDATE users SET id = 1234567 WHERE id = 1")
	mustExec(t, db, "CREATE TABLE named_tags (name TEXT PRIMARY KEY, count INTEGER NOT NULL)")
	mustExec(t, db, "INSERT INTO named_tags VALUES ('a-tag-name-longer-than-a-word', 3)")
	return db, 1234567, strconv.Itoa(1234)[:0] + "a-tag-name-longer-than-a-word"
}

// TestGetHitAllocsAfterWrite: a write to another row of the table expires
// that row's key, and the table's hit floor passes every entry loaded
// before; a Get hit of such an entry still allocates nothing: the entry
// is stamped anew by its first hit after the write, so that its next hits
// pass the floor (cache/restamp.go). A write to the row itself expires it.
func TestGetHitAllocsAfterWrite(t *testing.T) {
	bg := context.Background()
	db, id, name := allocsDB(t)
	mustExec(t, db, "INSERT INTO named_tags VALUES ('other', 4)")
	ids, names := []int64{id}, []string{name}
	for _, ctx := range []context.Context{bg, idmap.NewContext(bg)} {
		u, err := idmap.Get[User](ctx, db, id)
		if err != nil {
			t.Fatal(err)
		}
		s, err := idmap.Get[StrongUser](ctx, db, id)
		if err != nil {
			t.Fatal(err)
		}
		g, err := idmap.Get[NamedTag](ctx, db, name)
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, db, "UPDATE users SET name = 'x' WHERE id = 2")
		mustExec(t, db, "UPDATE named_tags SET count = 5 WHERE name = 'other'")
		for _, c := range []struct {
			name string
			get  func() bool
		}{
			{"weak int64", func() bool { v, err := idmap.Get[User](ctx, db, ids[0]+zero); return err == nil && v == u }},
			{"strong int64", func() bool { v, err := idmap.Get[StrongUser](ctx, db, ids[0]+zero); return err == nil && v == s }},
			{"string", func() bool { v, err := idmap.Get[NamedTag](ctx, db, names[0]); return err == nil && v == g }},
		} {
			if a := testing.AllocsPerRun(200, func() {
				if !c.get() {
					t.Fatal(c.name, ": not the same object")
				}
			}); a != 0 {
				t.Errorf("%s key, scope %v, after a write to another row: %v allocations per Get hit; want 0", c.name, ctx != bg, a)
			}
		}
		// The row's own write: the shared map gives a new object, a
		// scope refreshes its object in place.
		mustExec(t, db, "UPDATE users SET name = 'y' WHERE id = 1234567")
		if v, err := idmap.Get[User](ctx, db, id); err != nil || v.Name != "y" || (v == u) != (ctx != bg) {
			t.Errorf("scope %v: Get after a write to the row: %+v (the same object: %v), %v; want the row's new name", ctx != bg, v, v == u, err)
		}
	}
}

// TestGetFirstHitAllocsAfterWrite: the first Get hit of an entry after a
// write to another row of its table, which reads the table's record of
// written keys and stamps the entry anew, allocates nothing either, for
// int64 and string keys, in the shared map and in a scope. (A string key
// took 4 allocations: the key put in an interface for the normaliser,
// strconv's error for a key that is not an integer, and its result.) Each
// count is of one Get after a write; the least of 5 writes is taken, since
// the process's other goroutines may allocate meanwhile.
func TestGetFirstHitAllocsAfterWrite(t *testing.T) {
	bg := context.Background()
	db, id, name := allocsDB(t)
	mustExec(t, db, "INSERT INTO named_tags VALUES ('other', 4)")
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for _, ctx := range []context.Context{bg, idmap.NewContext(bg)} {
		for _, c := range []struct {
			name  string
			get   func() error
			write string
		}{
			{"weak int64", func() error { _, err := idmap.Get[User](ctx, db, id); return err }, "UPDATE users SET name = 'x' WHERE id = 2"},
			{"strong int64", func() error { _, err := idmap.Get[StrongUser](ctx, db, id); return err }, "UPDATE users SET name = 'x' WHERE id = 2"},
			{"string", func() error { _, err := idmap.Get[NamedTag](ctx, db, name); return err }, "UPDATE named_tags SET count = count + 1 WHERE name = 'other'"},
			{"UserID", func() error { _, err := idmap.Get[UserIDUser](ctx, db, UserID(id)); return err }, "UPDATE users SET name = 'x' WHERE id = 2"},
			{"TagName", func() error { _, err := idmap.Get[TagNameTag](ctx, db, TagName(name)); return err }, "UPDATE named_tags SET count = count + 1 WHERE name = 'other'"},
		} {
			if err := c.get(); err != nil { // loads the entry
				t.Fatal(err)
			}
			least := uint64(math.MaxUint64)
			var ms runtime.MemStats
			for range 5 {
				mustExec(t, db, c.write)
				runtime.ReadMemStats(&ms)
				before := ms.Mallocs
				if err := c.get(); err != nil {
					t.Fatal(err)
				}
				runtime.ReadMemStats(&ms)
				least = min(least, ms.Mallocs-before)
			}
			if least != 0 {
				t.Errorf("%s key, scope %v: %d allocations on the first hit after a write to another row; want 0", c.name, ctx != bg, least)
			}
		}
	}
}

// TestGetKeysFromTheStack: keys the caller makes on its stack (a string
// converted from a local buffer, a pointer to a local, a struct holding
// them) are copied by Get before it keeps them: a miss stores them in the
// map, and later hits with equal keys find the same object.
func TestGetKeysFromTheStack(t *testing.T) {
	bg := context.Background()
	db := openSQLite(t)
	mustExec(t, db, "CREATE TABLE named_tags (name TEXT PRIMARY KEY, count INTEGER NOT NULL)")
	for i := range 50 {
		mustExec(t, db, "INSERT INTO named_tags VALUES (?, ?)", "tag"+strconv.Itoa(i), i)
	}
	get := func(i int) *NamedTag {
		var buf [16]byte
		b := strconv.AppendInt(append(buf[:0], "tag"...), int64(i), 10)
		g, err := idmap.Get[NamedTag](bg, db, string(b))
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	getPtr := func(i int) *NamedTag {
		s := "tag" + strconv.Itoa(i)
		g, err := idmap.Get[NamedTag](bg, db, &s)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	first := make([]*NamedTag, 50)
	for i := range first {
		first[i] = get(i)
	}
	deep(64) // grow and move the stack
	time.Sleep(0)
	for i := range first {
		if g := get(i); g != first[i] || g.Name != "tag"+strconv.Itoa(i) || g.Count != int64(i) {
			t.Fatalf("tag%d: %+v, want the first object %+v", i, g, first[i])
		}
		if g := getPtr(i); g != first[i] {
			t.Fatalf("tag%d by pointer: %+v, want the first object %+v", i, g, first[i])
		}
	}
	if _, err := idmap.Get[NamedTag](bg, db, map[string]int{}); !errors.Is(err, idmap.ErrKey) {
		t.Fatalf("Get with a map key: %v, want ErrKey", err)
	}
	if _, err := idmap.Get[NamedTag](bg, db, funcKey{func() string { return "tag1" }}); !errors.Is(err, idmap.ErrKey) {
		t.Fatalf("Get with a Valuer holding a func: %v, want ErrKey", err)
	}
	if g, err := idmap.Get[NamedTag](bg, db, strValuer{"tag1"}); err != nil || g != first[1] {
		t.Fatalf("Get with a Valuer: %v, %v; want the first object", g, err)
	}
}

// funcKey is a driver.Valuer that holds a func: Get cannot copy it.
type funcKey struct{ f func() string }

func (k funcKey) Value() (driver.Value, error) { return k.f(), nil }

// strValuer is a driver.Valuer of a string.
type strValuer struct{ s string }

func (k strValuer) Value() (driver.Value, error) { return k.s, nil }

// zero is 0, but not a constant: a key computed from it is boxed at run time.
var zero int64

//go:noinline
func deep(n int) int {
	var pad [512]byte
	if n == 0 {
		return int(pad[0])
	}
	return deep(n-1) + int(pad[n%512])
}

// BenchmarkGetHit: a Get hit of an int64 key in a scope of 1,000 rows and
// in the shared map, for profiling the hit path (bench/ has the measured
// comparisons).
func BenchmarkGetHit(b *testing.B) {
	bg := context.Background()
	db := openSQLite(b)
	seedUsers(b, db, 1000)
	sctx := idmap.NewContext(bg)
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{{"shared", bg}, {"scope", sctx}} {
		queryUsers(b, c.ctx, db, "SELECT id, name, email FROM users")
		b.Run(c.name, func(b *testing.B) {
			i := int64(0)
			for b.Loop() {
				i = i%1000 + 1
				if _, err := idmap.Get[User](c.ctx, db, i); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestGetTxHitAllocs: a Get hit through a transaction (the general path,
// which copies the key before keeping it) costs at most 5 allocations, 13
// before the probe went through ExecContext: what remains is database/sql's
// (the Tx's release func, the boxed Result) and sqlmw's (the parent conn
// and the Result it wraps), and the key's copy.
func TestGetTxHitAllocs(t *testing.T) {
	bg := context.Background()
	db := openSQLite(t)
	seedUsers(t, db, 300)
	tx, err := db.BeginTx(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	u, err := idmap.Get[User](bg, tx, int64(299))
	if err != nil {
		t.Fatal(err)
	}
	ids := []int64{299}
	if a := testing.AllocsPerRun(200, func() {
		if v, err := idmap.Get[User](bg, tx, ids[0]+zero); err != nil || v != u {
			t.Fatal("not the same object", err)
		}
	}); a > 5 {
		t.Errorf("%v allocations per Get hit in a transaction; want ≤ 5", a)
	}
}

// TestGetHitAllocsTwoDBs: Get hits that alternate between two databases
// allocate nothing either (the model's link to its last *sql.DB is not
// made anew each time the *sql.DB changes).
func TestGetHitAllocsTwoDBs(t *testing.T) {
	bg := context.Background()
	var dbs [2]*sql.DB
	var us [2]*User
	for i := range dbs {
		db, err := idmap.Open("sqlite3", sqliteDSN(t, "two.db"), idmap.Name(fmt.Sprintf("two-dbs-%d-%d", os.Getpid(), i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		seedUsers(t, db, 1)
		if us[i], err = idmap.Get[User](bg, db, int64(1)); err != nil {
			t.Fatal(err)
		}
		dbs[i] = db
	}
	if us[0] == us[1] {
		t.Fatal("two databases gave one object")
	}
	id := int64(1)
	if a := testing.AllocsPerRun(200, func() {
		for i, db := range dbs {
			if v, err := idmap.Get[User](bg, db, id+zero); err != nil || v != us[i] {
				t.Fatalf("Get[User] in database %d: %p, %v; want %p", i, v, err, us[i])
			}
		}
	}); a != 0 {
		t.Errorf("%v allocations per two Get hits in two databases; want 0", a)
	}
}

// TestGetLinkReleasedOnClose: Get's link from a model to the last *sql.DB
// it went through does not keep a closed *sql.DB reachable: once closed
// and dropped, the *sql.DB is collected, and a Get through a new one of
// the same database finds its objects.
func TestGetLinkReleasedOnClose(t *testing.T) {
	bg := context.Background()
	dsn := sqliteDSN(t, "link.db")
	name := fmt.Sprintf("link-%d", os.Getpid())
	gone := func() weak.Pointer[sql.DB] {
		db, err := idmap.Open("sqlite3", dsn, idmap.Name(name))
		if err != nil {
			t.Fatal(err)
		}
		seedUsers(t, db, 1)
		if _, err := idmap.Get[User](bg, db, int64(1)); err != nil {
			t.Fatal(err)
		}
		if _, err := idmap.Get[User](bg, db, int64(1)); err != nil { // a hit, through the link
			t.Fatal(err)
		}
		w := weak.Make(db)
		db.Close()
		return w
	}()
	for i := 0; i < 10 && gone.Value() != nil; i++ {
		runtime.GC()
	}
	if gone.Value() != nil {
		t.Fatal("a closed *sql.DB stays reachable after a Get went through it")
	}
	db, err := idmap.Open("sqlite3", dsn, idmap.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if u, err := idmap.Get[User](bg, db, int64(1)); err != nil || u.ID != 1 {
		t.Fatalf("Get through a new *sql.DB: %v, %v", u, err)
	}
}
