package cache

import (
	"strconv"
	"strings"
	"testing"
)

func TestUUIDDigits(t *testing.T) {
	const want = "a0eebc999c0b4ef8bb6d6bb9bd380a11"
	for _, s := range []string{
		"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
		"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", "a0eebc999c0b4ef8bb6d6bb9bd380a11",
		"a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
	} {
		if got, ok := uuidDigits(s); !ok || got != want {
			t.Errorf("uuidDigits(%q) = %q, %v; want %q", s, got, ok, want)
		}
	}
	for _, s := range []string{
		"", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
		"-a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0eebc999c0b4ef8bb6d6bb9bd380a11-", "a0eebc99--9c0b4ef8bb6d6bb9bd380a11",
		"{a0eebc999c0b4ef8bb6d6bb9bd380a11", "g0eebc999c0b4ef8bb6d6bb9bd380a11", "a0eebc99 9c0b4ef8bb6d6bb9bd380a11",
	} {
		if got, ok := uuidDigits(s); ok {
			t.Errorf("uuidDigits(%q) = %q; want no UUID", s, got)
		}
	}
}

func TestNormString(t *testing.T) {
	for _, c := range []struct {
		in    string
		n     int64
		str   string
		isInt bool
	}{
		{"42", 42, "", true},
		{" -42 ", -42, "", true},
		{"+7", 7, "", true},
		{"007", 7, "", true},
		{"9223372036854775807", 9223372036854775807, "", true},
		{"9223372036854775808", 0, "9223372036854775808", false}, // out of int64's range
		{"1_000", 0, "1_000", false},
		{"0x10", 0, "0x10", false},
		{"-", 0, "-", false},
		{"", 0, "", false},
		{"Alice  ", 0, "alice", false},
		{"  Alice", 0, "  alice", false},
		{"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", 0, "a0eebc999c0b4ef8bb6d6bb9bd380a11", false},
	} {
		n, str, isInt := NormString(c.in)
		if n != c.n || str != c.str || isInt != c.isInt {
			t.Errorf("NormString(%q) = %d, %q, %v; want %d, %q, %v", c.in, n, str, isInt, c.n, c.str, c.isInt)
		}
	}
	for _, s := range []string{"alice", "42", " 42 ", "tag17", "-", ""} {
		if a := testing.AllocsPerRun(100, func() { NormString(s) }); a != 0 {
			t.Errorf("NormString(%q): %v allocations; want 0", s, a)
		}
	}
}

// FuzzNormStringDecimal: decimal, which spares NormString strconv's error
// (and its allocation), never turns away a string that ParseInt reads, so
// NormString reads every integer that ParseInt does.
func FuzzNormStringDecimal(f *testing.F) {
	for _, s := range []string{"42", "-0", "+", "1_0", " 7", "٣", "9223372036854775808", "0x1f", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		t1 := strings.TrimSpace(s)
		n, err := strconv.ParseInt(t1, 10, 64)
		if err == nil && !decimal(t1) {
			t.Fatalf("decimal(%q) = false; ParseInt reads %d", t1, n)
		}
		if gn, _, isInt := NormString(s); (err == nil) != isInt || (err == nil && gn != n) {
			t.Fatalf("NormString(%q) = %d, isInt %v; ParseInt %d, %v", s, gn, isInt, n, err)
		}
	})
}
