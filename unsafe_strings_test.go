package idmap

import (
	"testing"
	"unsafe"
)

// TestBytesString guards unsafe_strings.go: the string has b's bytes, in
// b's memory (no copy), and an empty b gives an empty string.
func TestBytesString(t *testing.T) {
	b := []byte("12345")
	s := bytesString(b)
	if s != "12345" || unsafe.StringData(s) != unsafe.SliceData(b) {
		t.Errorf("bytesString = %q at %p; want b's bytes at %p", s, unsafe.StringData(s), unsafe.SliceData(b))
	}
	if bytesString(nil) != "" || bytesString([]byte{}) != "" {
		t.Error("an empty slice gives a non-empty string")
	}
	if n := testing.AllocsPerRun(100, func() { _ = bytesString(b) }); n != 0 {
		t.Errorf("%v allocations; want 0", n)
	}
}
