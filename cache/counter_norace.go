//go:build !race

package cache

// addTo adds n to the stripe *w of the P the caller is pinned to: a plain
// increment, since the stripe has one writer at a time (see counter).
func addTo(w *uint64, n uint64) { *w += n }
