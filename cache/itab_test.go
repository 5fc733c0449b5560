package cache

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

// testStrKey is the string key of int key k, for the tables of string
// keys.
func testStrKey(k int64) skey { return strKey("key-" + strconv.FormatInt(k, 10)) }

type itabObj struct {
	key     int64
	version uint64
}

// TestItabModel: random stores, deletes, clears and sweeps of one shard
// set, checked after each step against a Go map; the tables grow, shrink
// and fill with tombstones on the way.
func TestItabModel(t *testing.T) {
	t.Run("int64", func(t *testing.T) { testItabModel(t, func(k int64) int64 { return k }) })
	t.Run("string", func(t *testing.T) { testItabModel(t, testStrKey) })
}

func testItabModel[K comparable](t *testing.T, key func(int64) K) {
	r := rand.New(rand.NewPCG(1, 2))
	var s kshards[K]
	model := map[int64]*itabObj{}
	keyRange := int64(1)
	for step := range 60000 {
		if step%5000 == 0 {
			keyRange *= 4 // widen: the tables grow
		}
		k := r.Int64N(keyRange) - keyRange/2
		h := hashOf(key(k))
		switch x := r.IntN(100); {
		case x < 55:
			o := &itabObj{key: k, version: uint64(step)}
			s.compute(h, key(k), func(slot, bool) (slot, op) {
				return slot{ref: unsafe.Pointer(o), meta: o.version << metaShift}, opStore
			})
			model[k] = o
		case x < 90:
			s.compute(h, key(k), func(cur slot, ok bool) (slot, op) { return cur, opDelete })
			delete(model, k)
		case x < 91 && step%7 == 0:
			s.clear()
			clear(model)
		case x < 95:
			// sweep every object of an odd version
			s.sweep(func(e slot) bool { return (*itabObj)(e.ref).version%2 == 1 })
			for k, o := range model {
				if o.version%2 == 1 {
					delete(model, k)
				}
			}
		default:
			e, ok := s.get(h, key(k))
			o := model[k]
			if ok != (o != nil) || (ok && (unsafe.Pointer(o) != e.ref || e.meta != o.version<<metaShift)) {
				t.Fatalf("step %d: get(%d) = %v, %v; want %v", step, k, e, ok, o)
			}
		}
		if step%997 == 0 {
			if n := s.len(); n != len(model) {
				t.Fatalf("step %d: len %d, want %d", step, n, len(model))
			}
			for k, o := range model {
				if e, ok := s.get(hashOf(key(k)), key(k)); !ok || e.ref != unsafe.Pointer(o) {
					t.Fatalf("step %d: key %d lost", step, k)
				}
			}
		}
	}
}

// TestItabConcurrent: writers store (new objects, new meta), delete and
// sweep keys while readers look them up, through growth, shrinking and
// clears. Every read returns the object stored under its key with the meta
// stored with that object (the seqlock), or a miss; a writer reading its
// own keys sees its last write. Run with -race.
func TestItabConcurrent(t *testing.T) {
	t.Run("int64", func(t *testing.T) { testItabConcurrent(t, func(k int64) int64 { return k }) })
	t.Run("string", func(t *testing.T) { testItabConcurrent(t, testStrKey) })
}

func testItabConcurrent[K comparable](t *testing.T, key func(int64) K) {
	var s kshards[K]
	const keys = 4096
	var stop atomic.Bool
	var wg sync.WaitGroup
	fail := make(chan string, 8)
	check := func(k int64, e slot, ok bool) {
		if !ok {
			return
		}
		o := (*itabObj)(e.ref)
		if o.key != k || e.meta != o.version<<metaShift {
			select {
			case fail <- "wrong object or torn meta":
			default:
			}
			stop.Store(true)
		}
	}
	for w := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 9))
			mine := map[int64]*itabObj{} // keys w mod 2 are this writer's
			for i := 0; i < 20000 && !stop.Load(); i++ {
				k := int64(r.IntN(keys/2)*2 + w)
				h := hashOf(key(k))
				switch x := r.IntN(100); {
				case x < 60:
					o := &itabObj{key: k, version: uint64(i)}
					s.compute(h, key(k), func(slot, bool) (slot, op) {
						return slot{ref: unsafe.Pointer(o), meta: o.version << metaShift}, opStore
					})
					mine[k] = o
				case x < 95:
					s.compute(h, key(k), func(cur slot, ok bool) (slot, op) { return cur, opDelete })
					delete(mine, k)
				case x < 99:
					s.sweep(func(e slot) bool {
						o := (*itabObj)(e.ref)
						return o.key%2 == int64(w) && o.version%3 == 0
					})
					for k, o := range mine {
						if o.version%3 == 0 {
							delete(mine, k)
						}
					}
				default:
					if w == 0 && i%50 == 0 {
						s.clear() // both writers' keys: writer 1's model is then a superset
						clear(mine)
					}
				}
				e, ok := s.get(h, key(k))
				if w == 0 {
					if o := mine[k]; ok != (o != nil) || (ok && e.ref != unsafe.Pointer(o)) {
						select {
						case fail <- "a writer does not read its own write":
						default:
						}
						stop.Store(true)
					}
				}
				check(k, e, ok)
			}
		})
	}
	var readers sync.WaitGroup
	for g := range 2 {
		readers.Go(func() {
			r := rand.New(rand.NewPCG(7, uint64(g)))
			for !stop.Load() {
				k := int64(r.IntN(keys))
				e, ok := s.get(hashOf(key(k)), key(k))
				check(k, e, ok)
			}
		})
	}
	wg.Wait()
	stop.Store(true) // the readers stop when the writers are done
	readers.Wait()
	close(fail)
	if msg, ok := <-fail; ok {
		t.Fatal(msg)
	}
}

// TestItabSeqlock: one writer replaces the objects of a few keys as fast
// as it can while readers read those keys: a reader never gets an object
// with another object's meta. (Without the seqlock's check it fails
// within a few thousand writes, with and without -race.)
func TestItabSeqlock(t *testing.T) {
	t.Run("int64", func(t *testing.T) { testItabSeqlock(t, func(k int64) int64 { return k }) })
	t.Run("string", func(t *testing.T) { testItabSeqlock(t, testStrKey) })
}

func testItabSeqlock[K comparable](t *testing.T, key func(int64) K) {
	var s kshards[K]
	const keys = 4
	var stop atomic.Bool
	var torn atomic.Int64
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for i := 0; !stop.Load(); i++ {
				k := int64(i % keys)
				if e, ok := s.get(hashOf(key(k)), key(k)); ok {
					if o := (*itabObj)(e.ref); o.key != k || e.meta != o.version<<metaShift {
						torn.Add(1)
					}
				}
			}
		})
	}
	for v := range uint64(100000) {
		k := int64(v % keys)
		o := &itabObj{key: k, version: v}
		s.compute(hashOf(key(k)), key(k), func(slot, bool) (slot, op) {
			return slot{ref: unsafe.Pointer(o), meta: o.version << metaShift}, opStore
		})
		if torn.Load() != 0 {
			break
		}
	}
	stop.Store(true)
	readers.Wait()
	if n := torn.Load(); n != 0 {
		t.Fatalf("%d reads paired an object with another's meta", n)
	}
}

// TestItabSequenceNeverWraps: a reader paused between its two loads of a
// slot's meta word while the slot is written 32,766 times (the sequence's
// even values once round) must not accept one write's object with another
// write's meta. Replayed step by step, as a preempted reader would see it:
// the writers go through putItab, which rebuilds the table before a slot's
// sequence would wrap, so the slot the reader holds is frozen.
func TestItabSequenceNeverWraps(t *testing.T) {
	var p atomic.Pointer[itab]
	objA, objB := new(int), new(int)
	a, b := unsafe.Pointer(objA), unsafe.Pointer(objB)
	const k = 42
	h := ihash(k)
	metaA, metaB := uint64(5)<<metaShift, uint64(9)<<metaShift|metaPartial
	putItab(&p, h, k, a, metaA)

	tb := p.Load()
	sl := &tb.slots[tb.find(h, k)]
	m1 := sl.meta.Load() // the reader's first load: A's meta
	putItab(&p, h, k, b, metaB)
	r := atomic.LoadPointer(&sl.ref) // the reader's object: B
	for range seqMask/2 - 1 {
		putItab(&p, h, k, a, metaA) // back to A's meta, again and again
	}
	m2 := sl.meta.Load() // the reader's second load
	if m1 == m2 && r != a {
		t.Fatalf("the reader accepts object B with A's meta (%#x): the slot's sequence wrapped in place", m2)
	}
	if got, meta, ok := p.Load().get(h, k); !ok || got != a || meta != metaA {
		t.Fatalf("after the writes: %p, meta %#x, %v; want A, %#x", got, meta, ok, metaA)
	}
	runtime.KeepAlive(objA)
	runtime.KeepAlive(objB)
}

// TestItabCollidingKeys: keys that are consecutive, or a power of two
// apart (the keys of one shard), take their home slots; keys chosen to
// collide mod the table's odd sizes (multiples of the odd primes up to 23)
// make the table switch to a seeded mixer. Whatever the keys, the mean
// distance from home stays within maxMeanDisp and every key is found.
func TestItabCollidingKeys(t *testing.T) {
	const odd = 3 * 5 * 7 * 11 * 13 * 17 * 19 * 23
	for _, c := range []struct {
		name    string
		key     func(i int64) int64
		perfect bool // every key in its home slot
		seeded  bool
	}{
		{"consecutive", func(i int64) int64 { return i + 1 }, true, false},
		{"negative", func(i int64) int64 { return -i - 1 }, true, false},
		{"stride 64", func(i int64) int64 { return 64*i + 7 }, true, false},
		{"large", func(i int64) int64 { return 1<<62 + i }, true, false},
		{"stride 1000", func(i int64) int64 { return 1000 * i }, false, false},
		{"random", func(i int64) int64 { return int64(mix(i)) }, false, false},
		{"colliding", func(i int64) int64 { return odd * i }, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p atomic.Pointer[itab]
			objs := make([]int64, 20000)
			for i := range objs {
				k := c.key(int64(i))
				putItab(&p, ihash(k), k, unsafe.Pointer(&objs[i]), 1<<metaShift)
			}
			tb := p.Load()
			if c.seeded && tb.seed == 0 {
				t.Errorf("the table is not seeded")
			}
			worst := 0
			for i := range objs {
				k := c.key(int64(i))
				j := tb.find(ihash(k), k)
				if j < 0 || atomic.LoadPointer(&tb.slots[j].ref) != unsafe.Pointer(&objs[i]) {
					t.Fatalf("key %d lost", k)
				}
				worst = max(worst, tb.dist(j, tb.home(ihash(k))))
			}
			mean := float64(tb.disp) / float64(tb.used)
			if mean > maxMeanDisp {
				t.Errorf("mean distance from home %.2f; want ≤ %d", mean, maxMeanDisp)
			}
			if c.perfect && (worst != 0 || tb.seed != 0) {
				t.Errorf("a key sits %d slots from home (seeded %v); want every key home", worst, tb.seed != 0)
			}
			t.Logf("%d keys in %d slots, seeded %v, mean distance %.3f, worst %d", tb.used, len(tb.slots), tb.seed != 0, mean, worst)
			runtime.KeepAlive(objs)
		})
	}
}
