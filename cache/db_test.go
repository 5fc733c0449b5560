package cache

import (
	"runtime"
	"testing"
)

// TestNewDBIndependent: two databases, even of one name, share no entry and
// no expiry.
func TestNewDBIndependent(t *testing.T) {
	a, b := NewDB("same"), NewDB("same")
	if a == b || a.Name() != "same" || b.Name() != "same" {
		t.Fatalf("NewDB gave %p %q and %p %q", a, a.Name(), b, b.Name())
	}
	o, l := load(1, a.Now())
	a.Shared().Put(userType, l, nil)
	if p, st := b.Shared().Lookup(userType, int64(1)); p != nil || st != Absent {
		t.Error("one database's entry is in another's map")
	}
	b.ExpireAll()
	if _, st := a.Shared().Lookup(userType, int64(1)); st != Fresh {
		t.Error("one database's expiry expired another's entry")
	}
	runtime.KeepAlive(o)
}
