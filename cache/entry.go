package cache

import (
	"unsafe"

	"github.com/go-idmap/idmap/cache/internal/ref"
)

// slot is one canonical object of a shared map, held in the map by value:
// a stored object costs no allocation of its own beyond the map's room
// (and, when weak, the runtime's weak handle). 16 bytes. A refresh stores a
// new slot with a new object.
type slot struct {
	// ref is the object (a strong map) or the word of a weak pointer to
	// it (a weak map, see package ref): which one is fixed per map, by
	// Type.Strong. Both are one pointer word the garbage collector traces.
	ref unsafe.Pointer
	// meta is epoch<<2 | referenced<<1 | partial: the clock when the query
	// that loaded the data began; whether a lookup found the entry since
	// the strong-entry bound last looked (MaxStrong); whether its row
	// lacked some mapped columns.
	meta uint64
}

const (
	metaPartial = 1
	metaRef     = 2
	metaShift   = 2
)

func (e slot) epoch() uint64 { return e.meta >> metaShift }
func (e slot) partial() bool { return e.meta&metaPartial != 0 }

// withEpoch is meta word meta (a shared slot's or a scope entry's) with
// its epoch set to epoch and its flags kept.
func withEpoch(meta, epoch uint64) uint64 { return epoch<<metaShift | meta&(1<<metaShift-1) }

// object returns the slot's object, or nil if it was weak and collected.
func (e slot) object(strong bool) unsafe.Pointer {
	if strong {
		return e.ref
	}
	return ref.Value(e.ref)
}

func newSlot(obj unsafe.Pointer, strong bool, epoch uint64, partial bool) slot {
	e := slot{meta: epoch << metaShift}
	if partial {
		e.meta |= metaPartial
	}
	if strong {
		e.ref = obj
	} else {
		e.ref = ref.Weak(obj)
	}
	return e
}

// Load is one row's object offered to a map by a load.
type Load struct {
	Key     any    // the typed primary key
	Obj     any    // the object scanned from the row: a non-nil pointer of the Type's Go type
	Epoch   uint64 // DB.Now() when the query began
	Partial bool   // the row lacked some mapped columns
	Refresh bool   // overwrite even a fresh entry (locking read, WithRefresh)
	// Canonical marks a load whose Obj is already the map's canonical
	// object (a hit found before the row was scanned): PutAll skips it.
	Canonical bool
}

// Apply copies the column fields that a load carries from src to dst; it is
// how a scope refreshes a canonical object in place. Both are pointers of
// the Type's Go type.
type Apply func(dst, src any)

// State says what a map holds for a key.
type State uint8

const (
	Absent  State = iota // nothing, or a weak entry whose object is gone
	Fresh                // a complete object, current as far as this process knows
	Expired              // an object whose data must be reloaded before it is served
	Partial              // an object loaded from a partial row, not yet complete
)

// Map is either a database's shared map or a scope's view of one database.
type Map interface {
	// Lookup returns the canonical object for key (nil if none) and its
	// state.
	Lookup(typ *Type, key any) (any, State)
	// Put offers a loaded object and returns the canonical one: the entry's
	// object when it is fresh and complete (the load's data is discarded),
	// else the load's data become current: refreshed in place by apply in a
	// scope; in the shared map, a new object replaces the entry (with the
	// old one's temporary fields and the load's columns when the Type has
	// New and Copy; else the load's object).
	// l.Obj must be a non-nil pointer of typ's Go type (see Type): Put
	// panics otherwise.
	Put(typ *Type, l *Load, apply Apply) any
	// Cursor returns a lookup of typ's keys in this map, for the rows of
	// one load: it finds the type's map once. It returns nil when the map
	// is known to hold nothing of typ.
	Cursor(typ *Type) Cursor
	// PutAll is Put for every load not marked Canonical; it sets each
	// load's Obj to the canonical object.
	PutAll(typ *Type, loads []Load, apply Apply)
	// PutChunks is PutAll of the loads of every chunk, in order: a load
	// of many rows staged in chunks is never copied into one slice.
	PutChunks(typ *Type, chunks [][]Load, apply Apply)
	// Remove forgets key; if obj is not nil, only while obj is its object.
	Remove(typ *Type, key any, obj any) bool
	// DB returns the database whose map this is.
	DB() *DB
	// Scoped reports whether this is a scope's map.
	Scoped() bool
}

// A Cursor looks keys of one type up in one map.
type Cursor interface {
	Lookup(key any) (any, State)
}

// decide says what Put does with an existing entry e (state st) and load l.
// keep: return e's object unchanged. Otherwise the load's data win.
func keep(st State, l *Load) bool {
	switch st {
	case Fresh:
		return !l.Refresh
	case Partial:
		// A partial entry stays until a complete row arrives; another
		// partial row does not replace it unless asked to.
		return l.Partial && !l.Refresh
	}
	return false
}
