package idmap

import "unsafe"

// bytesString views b as a string for parsing; b must not change while the
// string is in use.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
