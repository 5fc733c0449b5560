package cache

import (
	"fmt"
	"testing"
)

type obj struct {
	id   int64
	name string
	pad  [4]int64
}

func newTestDB(t testing.TB) *DB {
	t.Helper()
	return NewDB(t.Name())
}

var userType = &Type{Name: "obj", Table: "users"}

func load(key int64, epoch uint64) (*obj, *Load) {
	o := &obj{id: key}
	return o, &Load{Key: key, Obj: o, Epoch: epoch}
}

var strongType = &Type{Name: "obj", Table: "strong_things", Strong: true}

type other struct{ id int64 }

// mustPanic runs f and returns its panic's message, failing if f returns.
func mustPanic(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("no panic")
		}
		msg = fmt.Sprint(r)
	}()
	f()
	return ""
}

// typedLookups looks k (an int64 or a string) up with the typed lookups of
// d's shared map and of scope s.
func typedLookups(d *DB, s *Scope, typ *Type, k any) (shared any, sst State, scoped any, scst State) {
	switch x := k.(type) {
	case int64:
		shared, sst = d.LookupSharedInt(typ, x)
		scoped, scst = s.LookupInt(d, typ, x)
	case string:
		shared, sst = d.LookupSharedString(typ, x)
		scoped, scst = s.LookupString(d, typ, x)
	}
	return shared, sst, scoped, scst
}
