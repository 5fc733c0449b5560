package cache

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

type pairKey struct{ a, b int64 }

// TestConcurrentKinds: goroutines put, look up, remove, expire, flush,
// sweep and bound keys of every kind (int64, int, string, a struct) in the
// shared maps (weak and strong under a bound) and in one scope, at once.
// A lookup never returns another key's object (run with -race).
func TestConcurrentKinds(t *testing.T) {
	d := newTestDB(t)
	d.SetMaxStrong(40)
	weakT := &Type{Name: "weak", Table: "k"}
	strongT := &Type{Name: "strong", Table: "k", Strong: true}
	s := NewScope()
	keyOf := func(kind, i int) any {
		switch kind {
		case 0:
			return int64(i)
		case 1:
			return i
		case 2:
			return fmt.Sprint("k", i)
		}
		return pairKey{int64(i), -int64(i)}
	}
	idOf := func(key any) int64 {
		switch k := key.(type) {
		case int64:
			return k
		case int:
			return int64(k)
		case string:
			var n int64
			fmt.Sscan(k[1:], &n)
			return n
		case pairKey:
			return k.a
		}
		return -1
	}
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := range 6 {
		wg.Go(func() {
			keep := []*obj{}
			for i := range 2000 {
				kind := (i + g) % 4
				key := keyOf(kind, i%60)
				typ := weakT
				if i%3 == 0 {
					typ = strongT
				}
				var m Map = d.Shared()
				if g%2 == 0 {
					m = s.In(d)
				}
				o := &obj{id: idOf(key)}
				keep = append(keep, o)
				p := m.Put(typ, &Load{Key: key, Obj: o, Epoch: d.Now()}, func(dst, src any) {})
				if p == nil || p.(*obj).id != idOf(key) {
					errs <- fmt.Sprintf("Put(%v) returned another key's object", key)
					return
				}
				if q, _ := m.Lookup(typ, key); q != nil && q.(*obj).id != idOf(key) {
					errs <- fmt.Sprintf("Lookup(%v) returned another key's object", key)
					return
				}
				switch i % 50 {
				case 7:
					d.ExpireKeys("k", key)
				case 13:
					m.Remove(typ, key, nil)
				case 17:
					if c := m.Cursor(typ); c != nil {
						c.Lookup(key)
					}
				case 23:
					s.ExpireLoadedSince(d, d.Now())
				case 29:
					d.Sweep()
				case 31:
					s.Flush(d, typ)
				case 37:
					d.FlushShared(typ)
				case 41:
					_ = d.Counters()
					_ = s.Len()
				}
				if i%500 == 499 {
					keep = keep[:0]
					runtime.GC()
				}
			}
			runtime.KeepAlive(keep)
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := d.SharedLen(strongT); n > 40 {
		t.Errorf("%d strong entries under a bound of 40", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	d := newTestDB(t)
	s := NewScope()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keep := []*obj{}
			for i := range 500 {
				k := int64(i % 50)
				var m Map = d.Shared()
				if g%2 == 0 {
					m = s.In(d)
				}
				o, l := load(k, d.Now())
				keep = append(keep, o)
				p := m.Put(userType, l, func(dst, src any) {})
				if q, _ := m.Lookup(userType, k); q != p && q != nil {
					// another goroutine may have refreshed it in between
					_ = q
				}
				if i%97 == 0 {
					d.ExpireKeys("users", k)
				}
				if i%211 == 0 {
					d.FlushShared(nil)
					s.Flush(d, nil)
				}
			}
			runtime.KeepAlive(keep)
		}()
	}
	wg.Wait()
}
