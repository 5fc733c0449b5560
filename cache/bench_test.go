package cache

import (
	"fmt"
	"runtime"
	"testing"
	"unsafe"
	"weak"
)

// BenchmarkWeakEntry measures what each way of removing dead weak entries
// costs on the cold path: weak.Make alone (sweeping, as the package does)
// against weak.Make plus a runtime.AddCleanup per object.
func BenchmarkWeakEntry(b *testing.B) {
	b.Run("sweep", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			o := &obj{}
			_ = weak.Make((*byte)(unsafe.Pointer(o)))
		}
	})
	b.Run("cleanup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			o := &obj{}
			_ = weak.Make((*byte)(unsafe.Pointer(o)))
			runtime.AddCleanup(o, func(int64) {}, 0)
		}
	})
}

func BenchmarkSharedPutCold(b *testing.B) {
	d := NewDB(b.Name())
	m := d.Shared()
	keep := make([]*obj, 0, 1<<20)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		o, l := load(i, d.Now())
		i++
		m.Put(userType, l, nil)
		if len(keep) < cap(keep) {
			keep = append(keep, o)
		}
	}
}

func BenchmarkLookupHit(b *testing.B) {
	d := NewDB(b.Name())
	o, l := load(1, d.Now())
	for _, m := range []Map{d.Shared(), NewScope().In(d)} {
		m.Put(userType, l, nil)
		b.Run(map[bool]string{true: "scope", false: "shared"}[m.Scoped()], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, st := m.Lookup(userType, int64(1)); st != Fresh {
					b.Fatal("miss")
				}
			}
		})
	}
	runtime.KeepAlive(o)
}

// BenchmarkLookupHitStrong measures a strong entry's hit with and without
// the strong-entry bound (which marks entries as found).
func BenchmarkLookupHitStrong(b *testing.B) {
	for _, bounded := range []bool{false, true} {
		b.Run(map[bool]string{false: "unbounded", true: "bounded"}[bounded], func(b *testing.B) {
			d := NewDB(b.Name())
			if bounded {
				d.SetMaxStrong(1 << 20)
			}
			const n = 1024
			for k := range int64(n) {
				_, l := load(k, d.Now())
				d.Shared().Put(strongType, l, nil)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				k := int64(0)
				for pb.Next() {
					if _, st := d.LookupShared(strongType, k&(n-1)); st != Fresh {
						b.Fatal("miss")
					}
					k++
				}
			})
		})
	}
}

// BenchmarkScopePutAll100 is the map side of a cold Bind of 100 rows: a new
// scope takes 100 loads.
func BenchmarkScopePutAll100(b *testing.B) {
	d := NewDB(b.Name())
	objs := make([]obj, 100)
	loads := make([]Load, 100)
	b.ReportAllocs()
	for b.Loop() {
		for i := range loads {
			loads[i] = Load{Key: int64(1000 + i), Obj: &objs[i], Epoch: d.Now()}
		}
		s := NewScope()
		s.In(d).PutAll(userType, loads, nil)
		if _, st := s.Lookup(d, userType, int64(1050)); st != Fresh {
			b.Fatal(st)
		}
	}
}

// BenchmarkExpireAll: a whole-database expiry sets the database's hit
// floor under its mutex; its cost does not grow with the number of tables
// (a per-table floor raised at each such expiry, tried first, cost
// 0.2–0.3 ms at 10,000 tables).
func BenchmarkExpireAll(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprintf("tables=%d", n), func(b *testing.B) {
			d := NewDB("expireall")
			for i := range n {
				d.Table(fmt.Sprintf("t%d", i))
			}
			for b.Loop() {
				d.ExpireAll()
			}
		})
	}
}
