package idmap_test

import (
	"testing"

	"github.com/go-idmap/idmap"
)

// SPEC's django-idmap table, row "deserialized objects bypass the map": Intern.
func TestIntern(t *testing.T) {
	for _, scoped := range []bool{false, true} {
		ctx := scopedCtx(scoped)
		db := openSQLite(t)
		seedUsers(t, db, 2)
		u1, err := idmap.Get[User](ctx, db, 1)
		if err != nil {
			t.Fatal(err)
		}
		decoded := []*User{{ID: 1, Name: "from json"}, {ID: 3, Name: "new"}}
		fresh := decoded[1]
		if err := idmap.Intern(ctx, db, decoded); err != nil {
			t.Fatal(err)
		}
		if decoded[0] != u1 || u1.Name != "user1" {
			t.Errorf("scoped=%v: Intern of a loaded key: got %p %q; want the canonical %p, unchanged", scoped, decoded[0], decoded[0].Name, u1)
		}
		if decoded[1] != fresh || idmap.Cached[User](ctx, db, 3) != fresh {
			t.Errorf("scoped=%v: Intern did not make a new object canonical", scoped)
		}
		if err := idmap.Intern(ctx, db, []*User{{ID: 4}, nil}); err == nil {
			t.Error("Intern with a nil element: no error")
		}
		if idmap.Cached[User](ctx, db, 4) != nil {
			t.Error("a failed Intern changed the map")
		}
	}
}
