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
