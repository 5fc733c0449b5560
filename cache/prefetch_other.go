//go:build !amd64 && !arm64

package cache

// prefetch does nothing on this architecture (prefetch_asm.go).
func prefetch(addr uintptr) {}
