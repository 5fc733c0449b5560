//go:build amd64 || arm64

package cache

// prefetch asks the processor to bring the cache line at addr into its
// caches, and returns at once. Any address will do: a prefetch does not
// fault, and reads nothing the program sees (hints.go).
//
//go:noescape
func prefetch(addr uintptr)
