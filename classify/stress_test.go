package classify

import (
	"strings"
	"testing"
)

// largeTexts are large and deeply nested texts: classification must stay
// linear on them.
func largeTexts() []struct {
	d   Dialect
	sql string
} {
	rows := strings.Repeat("(?, 'a\\'b', 3),", 20000)
	texts := []struct {
		d   Dialect
		sql string
	}{
		{MySQL, "INSERT INTO t (a, b, c) VALUES " + rows + "(1, 2, 3)"},
		{MySQL, strings.Repeat("UPDATE t SET a = 'x\\'y' WHERE id = 1;", 5000)},
		{Generic, strings.Repeat("DELETE FROM t WHERE id = 1 # x\n;", 5000)},
		{Postgres, "SELECT " + strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000)},
		{SQLite, "UPDATE t SET x = 1 WHERE " + strings.Repeat("(", 50000) + "id = 1" + strings.Repeat(")", 50000)},
		{SQLite, "SELECT " + strings.Repeat("(SELECT ", 20000) + "1" + strings.Repeat(")", 20000)},
		{Postgres, strings.Repeat("WITH a AS (", 5000) + "SELECT 1" + strings.Repeat(") SELECT 1", 5000)},
		{SQLite, "SELECT * FROM t WHERE id IN (" + strings.Repeat("?,", 50000) + "?)"},
	}
	return texts
}

// TestLargeTexts classifies every large text: a quadratic (or worse) path
// shows as the test binary's timeout, and its speed is measured by
// BenchmarkLargeTexts, not by a wall-clock limit here.
func TestLargeTexts(t *testing.T) {
	for _, c := range largeTexts() {
		if s := classifyText(c.d, c.sql); s == nil {
			t.Errorf("%.40q…: no result", c.sql)
		}
	}
}

// BenchmarkLargeTexts measures one pass over every large text.
func BenchmarkLargeTexts(b *testing.B) {
	texts := largeTexts()
	for b.Loop() {
		for _, c := range texts {
			classifyText(c.d, c.sql)
		}
	}
}
