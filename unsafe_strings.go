package idmap

// Strings that view bytes. bytesString makes a string of a []byte without
// copying it. The invariant: b is never written again while the string
// lives; it is a parse buffer that the string does not outlive, or Scan's
// own copy of a value, which nothing else references (assignTo). Nothing
// else in idmap makes a string from bytes this way. unsafe_strings_test.go
// checks that the string shares b's bytes.

import "unsafe"

// bytesString views b as a string, without a copy; b must not be written
// while the string is in use.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
