package cache

import (
	"unsafe"

	"github.com/go-idmap/idmap/cache/internal/ref"
)

// A weak hit reads four things one after another: the slot, the weak
// pointer's handle (the runtime's), the handle's span, and then, in the
// caller, the object. From about 10^5 entries on each is a miss of the
// CPU's caches, and a lookup takes as long as its chain of misses. The
// hints take the object off the end of the chain: a weak int64 table of
// hintMin slots or more keeps beside its slots the address of each slot's
// object, and the hit path prefetches that address as it reads the slot,
// so that the object arrives while the runtime reads the handle and its
// span (BENCHMARKS.md, issue 16).
//
// A hint is only ever prefetched, never turned back into a pointer: the
// object may have been collected since, and the prefetch instruction does
// not fault or change anything but the caches, whatever the address. A
// stale or zero hint costs a wasted prefetch.

// hintMin is the size, in slots, from which a weak int64 table keeps hints
// (8 bytes a slot): about 45,000 entries in a shared map's 64 shards.
// Smaller maps mostly sit in the CPU's caches, where the prefetch is one
// more call for nothing (at 10^3 entries, 1.9x a plain map's lookup
// against 2.0x with it).
const hintMin = 1024

// weakAddr is the hint of a slot that holds the weak pointer word w: the
// address of its object, or 0 if there is none or it was collected.
func weakAddr(w unsafe.Pointer) uintptr {
	if w == nil {
		return 0
	}
	return uintptr(ref.Value(w))
}
