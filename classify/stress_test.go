package classify

import (
	"strings"
	"testing"
	"time"
)

// TestLargeTexts keeps classification linear on large and deeply nested
// texts.
func TestLargeTexts(t *testing.T) {
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
	for _, c := range texts {
		start := time.Now()
		s := classifyText(c.d, c.sql)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%.40q…: %v", c.sql, d)
		}
		_ = s
	}
}
