package cache

import (
	"sync"
	"time"
	"unsafe"
)

// SetMaxAge makes entries of d's shared maps expire once older than age
// (measured from when the query that loaded them began); 0 changes
// nothing. When several ages are set, the smallest holds. An entry expires
// between age and age×9/8 after its load: the clock is sampled every
// age/8.
func (d *DB) SetMaxAge(age time.Duration) {
	if age <= 0 {
		return
	}
	for {
		old := d.maxAge.Load()
		if old != 0 && old <= int64(age) {
			break
		}
		if d.maxAge.CompareAndSwap(old, int64(age)) {
			break
		}
	}
	d.ager.Do(func() { go d.age() })
}

// raiseAgeFloor raises the age floor to e, and with it the database's hit
// floor (DB.floor).
func (d *DB) raiseAgeFloor(e uint64) {
	d.gmu.Lock()
	defer d.gmu.Unlock()
	storeMax(&d.ageFloor, e)
	d.setFloor()
}

// age raises the age floor: every age/8 it ticks the clock and remembers
// when; the newest tick at least maxAge old is the floor. Databases live for
// the life of the process, and so does this goroutine.
func (d *DB) age() {
	type sample struct {
		at    time.Time
		epoch uint64
	}
	var samples []sample
	for {
		age := time.Duration(d.maxAge.Load())
		period := max(age/8, time.Millisecond)
		now := time.Now()
		samples = append(samples, sample{now, d.clock.Add(1)})
		i := 0
		for i+1 < len(samples) && now.Sub(samples[i+1].at) >= age {
			i++
		}
		if now.Sub(samples[i].at) >= age {
			d.raiseAgeFloor(samples[i].epoch)
		}
		samples = samples[i:]
		time.Sleep(period)
	}
}

// SetMaxStrong bounds the strongly held entries of d's shared maps (types
// with Strong set) to n: past it, entries that no lookup found since the
// bound last looked at them are dropped first, in the order they were
// stored (the CLOCK approximation of least recently used). 0 changes
// nothing; when several bounds are set, the smallest holds.
func (d *DB) SetMaxStrong(n int) {
	if n <= 0 {
		return
	}
	for {
		b := d.bound.Load()
		if b != nil && b.limit <= n {
			return
		}
		nb := &strongBound{limit: n, d: d}
		if b != nil {
			b.mu.Lock()
			nb.q = append(nb.q, b.q[b.head:]...)
			b.mu.Unlock()
		}
		if d.bound.CompareAndSwap(b, nb) {
			nb.mu.Lock()
			nb.trim()
			nb.mu.Unlock()
			return
		}
	}
}

// strongBound keeps the strong entries of a database's shared maps in the
// order they were stored, and drops the least recently found past its
// limit.
type strongBound struct {
	limit int
	d     *DB

	mu   sync.Mutex
	q    []boundNode // protected by mu: q[head:] is the queue, oldest first
	head int         // protected by mu
}

type boundNode struct {
	m   *sharedMap
	key any
	ref unsafe.Pointer // the slot's object when it was stored
}

// add records a strong entry just stored, and drops entries past the limit.
func (b *strongBound) add(m *sharedMap, key any, ref unsafe.Pointer) {
	b.mu.Lock()
	b.q = append(b.q, boundNode{m, key, ref})
	b.trim()
	b.mu.Unlock()
}

// trim drops entries until the queue holds no more than limit. Nodes of
// entries that were replaced or removed meanwhile are dropped for free; an
// entry found by a lookup since it was last looked at gets a second chance.
// b.mu is held.
func (b *strongBound) trim() {
	for len(b.q)-b.head > b.limit {
		n := b.q[b.head]
		b.q[b.head] = boundNode{}
		b.head++
		requeue := false
		n.m.compute(n.key, func(cur slot, ok bool) (slot, op) {
			switch {
			case !ok || cur.ref != n.ref:
				return cur, opKeep // replaced or removed: not in the map under this node
			case cur.meta&metaRef != 0:
				cur.meta &^= metaRef
				requeue = true
				return cur, opStore
			}
			b.d.stats.evicted.Add(1)
			return cur, opDelete
		})
		if requeue {
			b.q = append(b.q, n)
		}
	}
	if b.head > 64 && b.head > len(b.q)/2 {
		b.q = append(b.q[:0], b.q[b.head:]...)
		b.head = 0
	}
}
