//go:build !race

package cache

import (
	"math/bits"
	"sync/atomic"
)

// addTo adds n to the stripe *w of the P the caller is pinned to: a plain
// increment, since the stripe has one writer at a time (see counter). On
// a 32-bit platform a plain 64-bit add is two stores, between which a
// reader's atomic load would see half a carry (a count that goes back by
// 2^32): there the add is atomic. The test is a constant.
func addTo(w *uint64, n uint64) {
	if bits.UintSize == 64 {
		*w += n
	} else {
		atomic.AddUint64(w, n)
	}
}

// storeHint writes a hint (hints.go) with a plain store: on amd64 an
// atomic store is an exchange, a locked instruction, and a Bind writes a
// hint per row. A reader's atomic load of the word at the same time reads
// either value (a word-sized write does not tear where the hints are
// kept: a 32-bit platform's hint is 32 bits), and a hint read at the
// wrong moment is only prefetched.
func storeHint(p *uintptr, v uintptr) { *p = v }
