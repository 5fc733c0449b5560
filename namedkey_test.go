package idmap_test

import (
	"context"
	"database/sql/driver"
	"sync/atomic"
	"testing"

	"github.com/go-idmap/idmap"
)

// Key fields of named types: type UserID int64 is how many services spell
// their keys. Such a key is one identity whatever form the caller passes it
// in (UserID(5), int64(5), 5, "5"), expires with its row, and a hit
// allocates nothing, as with a field of type int64, int or string.

type UserID int64

type UserIDUser struct {
	ID   UserID `db:"id"`
	Name string `db:"name"`
}

func (UserIDUser) TableName() string { return "users" }

// OtherID is another named integer type: its values are keys of a UserID
// field too, converted.
type OtherID int64

type SmallID int

type SmallIDUser struct {
	ID   SmallID `db:"id"`
	Name string  `db:"name"`
}

func (SmallIDUser) TableName() string { return "users" }

type TagName string

type TagNameTag struct {
	Name  TagName `db:"name,pk"`
	Count int64   `db:"count"`
}

func (TagNameTag) TableName() string { return "named_tags" }

// ValuedID has a driver.Valuer: its keys keep their type, and a query
// for a key passes it to the driver as the Valuer says.
type ValuedID int64

var valuedCalls atomic.Int64

func (v ValuedID) Value() (driver.Value, error) {
	valuedCalls.Add(1)
	return int64(v), nil
}

type ValuedIDUser struct {
	ID   ValuedID `db:"id"`
	Name string   `db:"name"`
}

func (ValuedIDUser) TableName() string { return "users" }

func TestNamedKeyTypes(t *testing.T) {
	bg := context.Background()
	db, id, name := allocsDB(t)
	for _, ctx := range []context.Context{bg, idmap.NewContext(bg)} {
		scoped := ctx != bg
		u, err := idmap.Get[UserIDUser](ctx, db, UserID(id))
		if err != nil || u.ID != UserID(id) || u.Name != "user1" {
			t.Fatalf("Get[UserIDUser]: %+v, %v", u, err)
		}
		s, err := idmap.Get[SmallIDUser](ctx, db, SmallID(id))
		if err != nil || s.ID != SmallID(id) {
			t.Fatalf("Get[SmallIDUser]: %+v, %v", s, err)
		}
		g, err := idmap.Get[TagNameTag](ctx, db, TagName(name))
		if err != nil || g.Count != 3 {
			t.Fatalf("Get[TagNameTag]: %+v, %v", g, err)
		}
		// One identity, whatever form the key comes in.
		for _, k := range []any{UserID(id), id, int(id), "1234567", OtherID(id), ValuedID(id)} {
			if v, err := idmap.Get[UserIDUser](ctx, db, k); err != nil || v != u {
				t.Errorf("scope %v: Get[UserIDUser](%T %v) = %p, %v; want %p", scoped, k, k, v, err, u)
			}
			if v := idmap.Cached[UserIDUser](ctx, db, k); v != u {
				t.Errorf("scope %v: Cached[UserIDUser](%T %v) = %p; want %p", scoped, k, k, v, u)
			}
		}
		for _, k := range []any{TagName(name), name} {
			if v, err := idmap.Get[TagNameTag](ctx, db, k); err != nil || v != g {
				t.Errorf("scope %v: Get[TagNameTag](%T %v) = %p, %v; want %p", scoped, k, k, v, err, g)
			}
		}
		// Bind finds the same objects.
		rows, err := db.QueryContext(ctx, "SELECT id, name FROM users ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		var all []*UserIDUser
		if err := idmap.Bind(rows, &all); err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 || all[1] != u {
			t.Errorf("scope %v: Bind gave %v; want the Get's object %p second", scoped, all, u)
		}
		many, err := idmap.GetMany[UserIDUser](ctx, db, UserID(2), UserID(id))
		if err != nil || len(many) != 2 || many[0] != all[0] || many[1] != u {
			t.Errorf("scope %v: GetMany = %v, %v", scoped, many, err)
		}
		// A hit allocates nothing, with the key of the field's type or of
		// its basic type.
		ids, names := []int64{id}, []string{name}
		for _, c := range []struct {
			name string
			get  func() bool
		}{
			{"UserID", func() bool {
				v, err := idmap.Get[UserIDUser](ctx, db, UserID(ids[0]+zero))
				return err == nil && v == u
			}},
			{"UserID as int64", func() bool { v, err := idmap.Get[UserIDUser](ctx, db, ids[0]+zero); return err == nil && v == u }},
			{"SmallID", func() bool {
				v, err := idmap.Get[SmallIDUser](ctx, db, SmallID(ids[0]+zero))
				return err == nil && v == s
			}},
			{"TagName", func() bool { v, err := idmap.Get[TagNameTag](ctx, db, TagName(names[0])); return err == nil && v == g }},
			{"TagName as string", func() bool { v, err := idmap.Get[TagNameTag](ctx, db, names[0]); return err == nil && v == g }},
			{"Cached UserID", func() bool { return idmap.Cached[UserIDUser](ctx, db, UserID(ids[0]+zero)) == u }},
		} {
			if a := testing.AllocsPerRun(200, func() {
				if !c.get() {
					t.Fatal(c.name, ": not the same object")
				}
			}); a != 0 {
				t.Errorf("%s key, scope %v: %v allocations per Get hit; want 0", c.name, scoped, a)
			}
		}
	}

	// A write expires the row, whichever form of its key the write names.
	u, _ := idmap.Get[UserIDUser](bg, db, UserID(id))
	mustExec(t, db, "UPDATE users SET name = 'renamed' WHERE id = ?", id)
	if v, err := idmap.Get[UserIDUser](bg, db, UserID(id)); err != nil || v.Name != "renamed" {
		t.Errorf("after UPDATE: %+v, %v; want the new name", v, err)
	} else if v == u {
		t.Error("after UPDATE: the shared map served the old object")
	}
	g, _ := idmap.Get[TagNameTag](bg, db, TagName(name))
	mustExec(t, db, "UPDATE named_tags SET count = 9 WHERE name = ?", name)
	if v, err := idmap.Get[TagNameTag](bg, db, TagName(name)); err != nil || v.Count != 9 || v == g {
		t.Errorf("after UPDATE of a tag: %+v, %v", v, err)
	}

	// FlushInstance forgets the entry the Gets found; Intern puts a
	// loaded object in its place.
	u, _ = idmap.Get[UserIDUser](bg, db, UserID(id))
	idmap.FlushInstance(bg, u)
	if v := idmap.Cached[UserIDUser](bg, db, UserID(id)); v != nil {
		t.Errorf("after FlushInstance: Cached = %p; want nil", v)
	}
	mine := []*UserIDUser{{ID: UserID(id), Name: "renamed"}}
	if err := idmap.Intern(bg, db, mine); err != nil {
		t.Fatal(err)
	}
	if v, err := idmap.Get[UserIDUser](bg, db, id); err != nil || v != mine[0] {
		t.Errorf("after Intern: Get = %p, %v; want the interned %p", v, err, mine[0])
	}

	// A key type with a Valuer reaches the driver through it, and is one
	// identity too.
	before := valuedCalls.Load()
	v1, err := idmap.Get[ValuedIDUser](bg, db, ValuedID(2))
	if err != nil || v1.Name != "user2" {
		t.Fatalf("Get[ValuedIDUser]: %+v, %v", v1, err)
	}
	if valuedCalls.Load() == before {
		t.Error("the query of a ValuedID key did not call its Value method")
	}
	if v2, err := idmap.Get[ValuedIDUser](bg, db, int64(2)); err != nil || v2 != v1 {
		t.Errorf("Get[ValuedIDUser](int64 2) = %p, %v; want %p", v2, err, v1)
	}
}
