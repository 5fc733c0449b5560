package cache

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/go-idmap/idmap/cache/internal/iface"
)

// DefaultKeyLimit is how many written keys a table remembers before it
// collapses them into one table-wide expiry.
const DefaultKeyLimit = 4096

// A Type describes the Go type of the objects in a map. One *Type is made per
// Go type and shared by every map; maps are keyed by the pointer.
//
// Objects are non-nil pointers, all of one Go type: the first object
// stored fixes it, and storing an object of another type (or a nil pointer)
// panics. Lookups give the objects back as that type, in an interface (a
// pointer in an interface costs no allocation).
type Type struct {
	Name   string // the Go type, for messages
	Table  string // the table whose writes expire these objects
	Strong bool   // the shared map holds these objects strongly
	// NormKeepsInt64 says that Norm returns an int64 key as it is: the
	// expiry records of such a key are then read with no interface. (Beside
	// Strong, in its padding: the Type is part of the root package's
	// model, whose fields that Get's hit reads come after it.)
	NormKeepsInt64 bool
	// NormStrings says that Norm turns a string key into NormString's form
	// (the int64, or the string): the expiry records of a string key are
	// then read with no interface. (In Strong's padding too.)
	NormStrings bool
	// Norm turns a typed key into the form that key expiry records use, so
	// that two Go types on one table share expiry by key. Nil means the key
	// is used as it is.
	Norm func(key any) any
	// New and Copy, when set, let the shared map keep the temporary
	// (non-column) fields of an object across a refresh: the new object is
	// made by New, takes the old one's temporary fields by Copy, then the
	// loaded columns. New returns a pointer of the Type's Go type; Copy's
	// arguments are two of them.
	New  func() any
	Copy func(dst, src any)

	slots atomic.Pointer[[]*sharedMap] // the type's shared map in each database, by DB.id (copy on write)
	first unsafe.Pointer               // *sharedMap, atomic: the first database's, found with one load (sharedMap)
	word  atomic.Pointer[iface.Type]   // the type word of the objects' Go type, set by the first store (object.go)
}

func (t *Type) norm(key any) any {
	if t.Norm == nil {
		return key
	}
	return t.Norm(key)
}

// DB is the expiry clock and the shared maps of one database.
type DB struct {
	// clock is written by every query (Tick, expiries): it has a cache
	// line of its own, apart from the words every hit reads (floor,
	// bound), which writes seldom change.
	clock atomic.Uint64 // the newest epoch handed out
	// expiring counts the expiries under way: each is counted from before
	// it takes its epoch until its records and floors are written, so
	// that a lookup that reads the clock and then no expiry under way
	// knows every expiry up to that clock recorded (restamp.go). Written
	// by expiries only, on the clock's line.
	expiring atomic.Int64
	_        [48]byte

	id       int // index of the database's slot in each Type
	name     string
	whole    atomic.Uint64 // epoch of the newest whole-database expiry
	keyLimit int

	tables sync.Map // lower-case table name → *Table
	shared sync.Map // *Type → *sharedMap

	// floor is the database's hit floor: max(whole, ageFloor), or the
	// largest epoch while paused or under a lease (a lease is checked
	// against the clock, on the general path). gmu serialises its
	// writers, which set it again from those four words before they
	// return (setFloor), so that a hit path reads one word for the four
	// (clean; a table's own words have Table.floor).
	floor    atomic.Uint64
	gmu      sync.Mutex
	paused   atomic.Int32  // > 0: nothing is fresh (a bus lost its subscription)
	lease    atomic.Int64  // Mono() deadline past which nothing is fresh (a bus's lease); 0: none
	noShared atomic.Bool   // the shared maps store nothing (SetShared(false))
	ageFloor atomic.Uint64 // shared entries loaded before this epoch are too old (MaxAge)
	maxAge   atomic.Int64  // time.Duration; 0: no maximum age
	ager     sync.Once
	bound    atomic.Pointer[strongBound] // MaxStrong; nil: unbounded

	stats dbStats
	// Bus counts the database's traffic on its bus.
	Bus BusCounters
}

var dbSeq atomic.Int64

// NewDB returns a new database called name, with an empty clock and empty
// shared maps. The name is for messages and statistics: two databases made
// with one name are two databases, and the package keeps no registry of
// them by name (idmap keeps one per database name). A database lives for
// the life of the process (the sweeper of weak entries holds its weak
// maps, and each Type a slot for it): make one per database, not one per
// use.
func NewDB(name string) *DB {
	return &DB{id: int(dbSeq.Add(1) - 1), name: name, keyLimit: DefaultKeyLimit}
}

// Name returns the database's name.
func (d *DB) Name() string { return d.name }

// Now returns the current epoch. A query records it before it is sent.
func (d *DB) Now() uint64 { return d.clock.Load() }

// Tick advances the clock and returns the new epoch, expiring nothing: an
// entry loaded by a query that begins after Tick has an epoch at least the
// returned one, an entry loaded before has a smaller one.
func (d *DB) Tick() uint64 { return d.clock.Add(1) }

// ExpireAll expires every entry of every map of d loaded before now.
func (d *DB) ExpireAll() {
	d.stats.expiredAll.Add(1)
	d.expireAll()
}

func (d *DB) expireAll() {
	d.expiring.Add(1) // before the epoch: see DB.expiring
	defer d.expiring.Add(-1)
	d.gmu.Lock()
	defer d.gmu.Unlock()
	storeMax(&d.whole, d.clock.Add(1))
	d.setFloor()
}

// setFloor sets the database's hit floor from the words it folds in
// (DB.floor). gmu held.
func (d *DB) setFloor() {
	if d.paused.Load() > 0 || d.lease.Load() != 0 {
		d.floor.Store(math.MaxUint64)
		return
	}
	d.floor.Store(max(d.whole.Load(), d.ageFloor.Load()))
}

// ExpireTable expires every entry of every map of d whose type is on table.
func (d *DB) ExpireTable(table string) {
	d.stats.expiredTables.Add(1)
	d.expireTable(table)
}

func (d *DB) expireTable(table string) {
	t := d.Table(table)
	d.expiring.Add(1) // before the epoch: see DB.expiring
	defer d.expiring.Add(-1)
	t.raiseEpoch(d.clock.Add(1))
}

// ExpireKeys expires the entries of table whose normalised keys are in keys.
func (d *DB) ExpireKeys(table string, keys ...any) {
	d.stats.expiredKeys.Add(uint64(len(keys)))
	d.expireKeys(table, keys)
}

// ExpireRemote is what another instance's write expires: keys of table, the
// whole table (keys nil), or the whole database (table ""). It is counted
// as a remote expiry.
func (d *DB) ExpireRemote(table string, keys []any) {
	d.stats.expiredRemote.Add(1)
	switch {
	case table == "":
		d.expireAll()
	case len(keys) == 0:
		d.expireTable(table)
	default:
		d.expireKeys(table, keys)
	}
}

func (d *DB) expireKeys(table string, keys []any) {
	if len(keys) == 0 {
		return
	}
	t := d.Table(table)
	d.expiring.Add(1) // before the epoch: see DB.expiring
	defer d.expiring.Add(-1)
	d.recordKeys(t, keys, d.clock.Add(1))
}

// recordKeys records w as the newest expiry of keys of t. The epoch was
// taken before t's mutex, so a writer with an older epoch can come here
// after one with a newer epoch: a key's recorded expiry only moves
// forward (as the table's and the database's do), else an entry loaded
// between the two writes would be fresh again.
func (d *DB) recordKeys(t *Table, keys []any, w uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if !isComparable(k) {
			// A key that cannot be recorded widens to the table.
			t.raiseEpoch(w)
			continue
		}
		sh := &t.keys[keyShardOf(k)]
		sh.mu.Lock()
		ik, isInt := k.(int64)
		if isInt {
			t.nkeys += recordKey(&sh.ints, ik, w)
		} else {
			t.nkeys += recordKey(&sh.m, k, w)
		}
		sh.mu.Unlock()
		if isInt {
			// After the key, before keyMax and the floor (below): a
			// reader sent to the keys by those finds the bucket raised.
			storeMax(&t.intBuckets()[intBucket(ik)], w)
		}
	}
	storeMax(&t.floor, w)
	storeMax(&t.keyMax, w)
	if t.nkeys > d.keyLimit {
		// Collapse: the table-wide epoch covers every recorded key. It is
		// raised before the keys are cleared, and fresh reads it after
		// the key: a reader that finds a key gone finds the epoch raised.
		t.raiseEpoch(t.keyMax.Load())
		for i := range t.keys {
			sh := &t.keys[i]
			sh.mu.Lock()
			sh.m, sh.ints = nil, nil
			sh.mu.Unlock()
		}
		t.nkeys = 0
		t.collapses++
	}
}

// Pause expires every entry of d and makes nothing fresh until Resume: a
// bus that lost its subscription may miss writes of other instances. While
// paused, the shared maps store no load. Pauses nest.
func (d *DB) Pause() {
	d.addPause(1)
	d.ExpireAll()
}

// addPause adds n to the pause count and sets the hit floor from it.
func (d *DB) addPause(n int32) {
	d.gmu.Lock()
	defer d.gmu.Unlock()
	d.paused.Add(n)
	d.setFloor()
}

// Resume ends a Pause: every entry loaded until now is expired (it may have
// missed a write), and entries loaded from now on are fresh again.
func (d *DB) Resume() {
	d.ExpireAll()
	d.addPause(-1)
}

// SetShared turns d's shared maps on (the default) or off. Off, they store
// no load and forget what they held; scopes are not affected.
func (d *DB) SetShared(on bool) {
	d.noShared.Store(!on)
	if !on {
		d.FlushShared(nil)
	}
}

// SetLease sets the Mono() time from which nothing of d is fresh, until a
// later SetLease: the lease of a bus that proves delivery. 0 removes the
// lease. The check is made at every lookup, against the clock, so the
// bound holds whatever a timer does.
func (d *DB) SetLease(deadline int64) {
	d.gmu.Lock()
	defer d.gmu.Unlock()
	d.lease.Store(deadline)
	d.setFloor()
}

// Lease returns the deadline SetLease set (0: none).
func (d *DB) Lease() int64 { return d.lease.Load() }

// LeaseValid reports whether d has no lease or its lease has not expired.
func (d *DB) LeaseValid() bool {
	l := d.lease.Load()
	return l == 0 || Mono() < l
}

// Mono returns the time since the process started, from the monotonic
// clock: the time base of leases.
func Mono() int64 { return int64(time.Since(monoBase)) }

var monoBase = time.Now()

// Paused reports whether d is paused.
func (d *DB) Paused() bool { return d.paused.Load() > 0 }

// Table returns the expiry record of a table, making it on first use.
// Table names are compared without regard to case.
func (d *DB) Table(name string) *Table {
	name = foldName(name)
	if t, ok := d.tables.Load(name); ok {
		return t.(*Table)
	}
	t, _ := d.tables.LoadOrStore(name, &Table{name: name})
	return t.(*Table)
}

// freshOf reports whether data loaded at epoch for key of typ is still
// current as far as writes recorded in d go, for a key of any comparable
// type: the key goes into an interface only when the table's written keys
// must be read, so that a typed lookup (LookupSharedInt,
// Scope.LookupString, …) allocates nothing on its common path.
func freshOf[K comparable](d *DB, t *Table, typ *Type, key K, epoch uint64) bool {
	// The lease first: a renewal expires everything (d.whole) before it
	// stores the new deadline, so a lookup that sees the new deadline sees
	// that expiry too.
	if l := d.lease.Load(); l != 0 && Mono() >= l {
		return false
	}
	// The pause before the database's expiry: Resume raises whole, then
	// ends the pause, so a lookup that sees the pause ended sees whole
	// raised (read the other way round, an entry loaded during the pause
	// could pass an old whole and then an ended pause).
	if d.paused.Load() > 0 || epoch < d.whole.Load() || epoch < t.epoch.Load() {
		return false
	}
	if epoch >= t.keyMax.Load() {
		return true
	}
	if k, ok := any(key).(int64); ok && (typ.Norm == nil || typ.NormKeepsInt64) {
		return t.freshInt(k, epoch)
	}
	if k, ok := any(key).(string); ok && typ.NormStrings {
		n, str, isInt := NormString(k)
		if isInt {
			return t.freshInt(n, epoch)
		}
		return t.freshNorm(str, strShard(str)%keyShards, epoch)
	}
	return d.freshKey(t, typ, any(key), epoch)
}

// clean reports whether data of table t loaded at epoch are fresh by the
// checks that need no key: no lease, no pause, and no expiry of the
// database, the table or any of its keys since epoch, and (for the shared
// maps) not older than the age floor: epoch at or past the database's and
// the table's hit floors, which fold those six words into two. False is
// not stale: freshOf decides (for a scope's entry older than the age
// floor, which does not apply to scopes, it finds the entry fresh).
func (d *DB) clean(t *Table, epoch uint64) bool {
	return epoch >= d.floor.Load() && epoch >= t.floor.Load()
}

// freshKey is the end of fresh: whether the table's written keys hold a
// newer expiry of key.
func (d *DB) freshKey(t *Table, typ *Type, key any, epoch uint64) bool {
	nk := typ.norm(key)
	if k, ok := nk.(int64); ok {
		return t.freshInt(k, epoch)
	}
	return t.freshNorm(nk, keyShardOf(nk), epoch)
}

// freshNorm is freshKey of a normalised key other than an int64, in its
// shard of the table's written keys. nk does not escape (the map's index
// only reads it), so a caller that puts a string in it allocates nothing.
func (t *Table) freshNorm(nk any, shard int, epoch uint64) bool {
	sh := &t.keys[shard]
	sh.mu.RLock()
	w := sh.m[nk]
	sh.mu.RUnlock()
	te := t.epoch.Load() // read after the key: a collapse raises it before clearing keys
	return epoch >= w && epoch >= te
}

// freshInt is freshKey of a normalised int64 key, with no interface. The
// key's bucket first, with no lock: when no int64 key of its bucket was
// written after epoch, neither was k.
func (t *Table) freshInt(k int64, epoch uint64) bool {
	if b := t.ibuckets.Load(); b == nil || epoch >= b[intBucket(k)].Load() {
		return epoch >= t.epoch.Load()
	}
	sh := &t.keys[intShard(k)%keyShards]
	sh.mu.RLock()
	w := sh.ints[k]
	sh.mu.RUnlock()
	te := t.epoch.Load() // read after the key: a collapse raises it before clearing keys
	return epoch >= w && epoch >= te
}

// recordKey records w as key k's newest expiry in *m, making the map if
// need be, and returns 1 if k is new to it. Its shard's lock held.
func recordKey[K comparable](m *map[K]uint64, k K, w uint64) int {
	if *m == nil {
		*m = make(map[K]uint64)
	}
	old, ok := (*m)[k]
	if !ok || old < w {
		(*m)[k] = w
	}
	if ok {
		return 0
	}
	return 1
}

// Table is the expiry record of one table of a database.
type Table struct {
	name   string
	epoch  atomic.Uint64 // newest table-wide expiry
	keyMax atomic.Uint64 // newest epoch in keys
	// floor is the table's hit floor: at least epoch and keyMax, raised
	// with each before the write that raised it returns, so that a hit
	// path reads one word for both (clean). It only rises.
	floor atomic.Uint64

	mu        sync.Mutex // serialises writers of keys
	nkeys     int        // protected by mu: keys remembered, in all shards
	collapses int        // protected by mu: times keys collapsed into epoch
	// keys map normalised keys to the epoch of their newest expiry, in
	// shards by key: a reader takes the read lock of one shard, and a
	// writer makes wait only the readers of the shards it writes.
	keys [keyShards]keyShard
	// ibuckets holds, for each bucket of int64 keys (intBucket), the
	// newest expiry of a key of the bucket: a lookup whose entry is newer
	// reads no key (freshInt). Nil until the first int64 key is written;
	// raised under mu, after the key, and only ever raised.
	ibuckets atomic.Pointer[[intBuckets]atomic.Uint64]
}

// intBuckets is how many buckets of int64 keys a table's record of
// written keys keeps (8 KiB, once an int64 key is written).
const (
	intBucketBits = 10
	intBuckets    = 1 << intBucketBits
)

// intBucket is the bucket of int64 key k: a Fibonacci hash, so that keys
// a fixed distance apart spread.
func intBucket(k int64) uint64 { return uint64(k) * 0x9E3779B97F4A7C15 >> (64 - intBucketBits) }

// intBuckets returns t's buckets of int64 keys, made on first use. mu held.
func (t *Table) intBuckets() *[intBuckets]atomic.Uint64 {
	b := t.ibuckets.Load()
	if b == nil {
		b = new([intBuckets]atomic.Uint64)
		t.ibuckets.Store(b)
	}
	return b
}

// raiseEpoch raises the table-wide expiry, and the hit floor, to w.
func (t *Table) raiseEpoch(w uint64) {
	storeMax(&t.floor, w)
	storeMax(&t.epoch, w)
}

const keyShards = 16

type keyShard struct {
	mu   sync.RWMutex
	m    map[any]uint64   // protected by mu: keys of every type but int64
	ints map[int64]uint64 // protected by mu: int64 keys, looked up with no interface
	_    [64 - 24 - 16]byte
}

func keyShardOf(k any) int {
	switch x := k.(type) {
	case int64:
		return intShard(x) % keyShards
	case string:
		return strShard(x) % keyShards
	}
	return anyShard(k) % keyShards
}

// Name returns the table's name, folded to lower case.
func (t *Table) Name() string { return t.name }

// KeyStats returns how many written keys the table remembers and how often
// they were collapsed into a table-wide expiry.
func (t *Table) KeyStats() (keys, collapses int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nkeys, t.collapses
}

func storeMax(a *atomic.Uint64, v uint64) {
	for {
		old := a.Load()
		if old >= v || a.CompareAndSwap(old, v) {
			return
		}
	}
}

func foldName(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// isComparable reports whether k can be a map key without panicking.
func isComparable(k any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_ = k == k
	return true
}
