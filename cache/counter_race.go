//go:build race

package cache

import "sync/atomic"

// addTo adds n to the stripe *w atomically: the race detector does not
// know that pinning to a P serialises the stripe's writers (see counter).
func addTo(w *uint64, n uint64) { atomic.AddUint64(w, n) }

// storeHint writes a hint atomically, for the race detector (see
// counter_norace.go).
func storeHint(p *uintptr, v uintptr) { atomic.StoreUintptr(p, v) }
