package cache

import (
	"strconv"
	"strings"
)

// NormString is the form that expiry records give a string key: a decimal
// integer (spaces around it trimmed) is that integer (isInt, n), a UUID
// spelled as PostgreSQL reads it is its 32 hexadecimal digits in lower
// case, and any other string is folded to lower case without its trailing
// spaces (str). Keys that differ only so name one record, which only
// widens an expiry. The root package's key normaliser uses it for strings;
// a Type whose Norm does (NormStrings) has its string keys' records read
// with no interface.
//
// It allocates only for a UUID, a string with upper-case letters, or a
// decimal integer out of int64's range.
func NormString(s string) (n int64, str string, isInt bool) {
	t := strings.TrimSpace(s)
	if decimal(t) { // else ParseInt fails, and its error allocates
		if n, err := strconv.ParseInt(t, 10, 64); err == nil {
			return n, "", true
		}
	}
	if u, ok := uuidDigits(t); ok {
		return 0, u, false
	}
	return 0, strings.ToLower(strings.TrimRight(s, " ")), false
}

// decimal reports whether s has the form strconv.ParseInt(s, 10, 64)
// reads: a sign or none, then one or more decimal digits.
func decimal(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// uuidDigits returns the 32 hexadecimal digits, in lower case, of s when s
// spells a UUID in a way PostgreSQL reads (hyphens anywhere between groups
// of digits, braces around): a key written in one spelling names the row
// loaded in another. Two texts that differ only so in a text column are
// then one key, which only widens.
func uuidDigits(s string) (string, bool) {
	if len(s) < 32 || len(s) > 48 {
		return "", false
	}
	if s[0] == '{' {
		if s[len(s)-1] != '}' {
			return "", false
		}
		s = s[1 : len(s)-1]
	}
	var b [32]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' && i > 0 && i < len(s)-1 && s[i-1] != '-':
			continue
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		default:
			return "", false
		}
		if n == len(b) {
			return "", false
		}
		b[n] = c
		n++
	}
	if n != len(b) {
		return "", false
	}
	return string(b[:]), true
}
