package cache

import (
	"unsafe"
	"weak"
)

// slot is one canonical object of a shared map, held in the map by value:
// a stored object costs no allocation of its own beyond the map's room
// (and, when weak, the runtime's weak handle). 16 bytes. A refresh stores a
// new slot with a new object.
type slot struct {
	// ref is the object (a strong map) or the bits of a weak.Pointer to
	// it (a weak map): which one is fixed per map, by Type.Strong. Both
	// are one pointer word the garbage collector traces.
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

// A weak.Pointer is one pointer word, so that slot.ref can hold one.
var _ [unsafe.Sizeof(weak.Pointer[byte]{}) - unsafe.Sizeof(unsafe.Pointer(nil))]struct{}
var _ [unsafe.Sizeof(unsafe.Pointer(nil)) - unsafe.Sizeof(weak.Pointer[byte]{})]struct{}

func (e slot) epoch() uint64 { return e.meta >> metaShift }
func (e slot) partial() bool { return e.meta&metaPartial != 0 }

// object returns the slot's object, or nil if it was weak and collected.
func (e slot) object(strong bool) unsafe.Pointer {
	if strong {
		return e.ref
	}
	return unsafe.Pointer((*weak.Pointer[byte])(unsafe.Pointer(&e.ref)).Value())
}

func newSlot(obj unsafe.Pointer, strong bool, epoch uint64, partial bool) slot {
	e := slot{meta: epoch << metaShift}
	if partial {
		e.meta |= metaPartial
	}
	if strong {
		e.ref = obj
	} else {
		// A weak pointer to the first byte of the object: weak.Make tracks
		// the object that holds it, whatever the pointer's static type.
		w := weak.Make((*byte)(obj))
		e.ref = *(*unsafe.Pointer)(unsafe.Pointer(&w))
	}
	return e
}

// Load is one row's object offered to a map by a load.
type Load struct {
	Key     any            // the typed primary key
	Obj     unsafe.Pointer // the object scanned from the row
	Epoch   uint64         // DB.Now() when the query began
	Partial bool           // the row lacked some mapped columns
	Refresh bool           // overwrite even a fresh entry (locking read, WithRefresh)
	// Canonical marks a load whose Obj is already the map's canonical
	// object (a hit found before the row was scanned): PutAll skips it.
	Canonical bool
}

// Apply copies the column fields that a load carries from src to dst; it is
// how a scope refreshes a canonical object in place.
type Apply func(dst, src unsafe.Pointer)

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
	// Lookup returns the canonical object for key and its state.
	Lookup(typ *Type, key any) (unsafe.Pointer, State)
	// Put offers a loaded object and returns the canonical one: the entry's
	// object when it is fresh and complete (the load's data is discarded),
	// else the load's data become current: refreshed in place by apply in a
	// scope; in the shared map, a new object replaces the entry (with the
	// old one's temporary fields and the load's columns when the Type has
	// New and Copy; else the load's object).
	Put(typ *Type, l *Load, apply Apply) unsafe.Pointer
	// Cursor returns a lookup of typ's keys in this map, for the rows of
	// one load: it finds the type's map once. It returns nil when the map
	// is known to hold nothing of typ.
	Cursor(typ *Type) Cursor
	// PutAll is Put for every load not marked Canonical; it sets each
	// load's Obj to the canonical object.
	PutAll(typ *Type, loads []Load, apply Apply)
	// Remove forgets key; if obj is not nil, only while obj is its object.
	Remove(typ *Type, key any, obj unsafe.Pointer) bool
	// DB returns the database whose map this is.
	DB() *DB
	// Scoped reports whether this is a scope's map.
	Scoped() bool
}

// A Cursor looks keys of one type up in one map.
type Cursor interface {
	Lookup(key any) (unsafe.Pointer, State)
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
