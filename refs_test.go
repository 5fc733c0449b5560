package idmap_test

import (
	"context"
	"runtime"
	"testing"
	"unsafe"

	"github.com/go-idmap/idmap"
)

// Pinned is User's table with strong references.
type Pinned struct {
	ID   int64 `db:"id"`
	Name string
}

func init() { idmap.Model[Pinned](idmap.Table("users"), idmap.StrongRefs()) }

// SPEC's django-idmap table, row "weak references (default) /
// use_strong_refs".
func TestWeakAndStrongRefs(t *testing.T) {
	ctx := context.Background()
	db, count := openCounted(t)
	seedUsers(t, db, 1)

	// Weak: the entry lives while the object is reachable.
	u := queryUsers(t, ctx, db, "SELECT id, name, email FROM users")[0]
	runtime.GC()
	if idmap.Cached[User](ctx, db, 1) != u {
		t.Fatal("weak entry lost while its object is reachable")
	}
	runtime.KeepAlive(u)
	u = nil
	gone := false
	for range 10 {
		runtime.GC()
		if idmap.Cached[User](ctx, db, 1) == nil {
			gone = true
			break
		}
	}
	if !gone {
		t.Error("weak entry outlived its object")
	}

	// Strong: kept until flushed, even with no reference left.
	p, err := idmap.Get[Pinned](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	addr := uintptrOf(p)
	p = nil
	runtime.GC()
	runtime.GC()
	before := count.Queries()
	p2, err := idmap.Get[Pinned](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	if uintptrOf(p2) != addr || count.Queries() != before {
		t.Error("strong entry was not kept")
	}
	idmap.FlushType[Pinned](ctx, idmap.NameOf(db))
	if idmap.Cached[Pinned](ctx, db, 1) != nil {
		t.Error("strong entry survived FlushType")
	}
}

func uintptrOf[T any](p *T) uintptr { return uintptr(unsafe.Pointer(p)) }
