package classify

import (
	"strconv"
	"testing"
)

const benchSQL = "UPDATE users SET name = ?, email = ? WHERE id = ? AND org_id = ?"

// BenchmarkClassifyCached classifies a text seen before: one map lookup,
// no allocation.
func BenchmarkClassifyCached(b *testing.B) {
	Classify(SQLite, benchSQL)
	b.ReportAllocs()
	for b.Loop() {
		if Classify(SQLite, benchSQL) == nil {
			b.Fatal("nil")
		}
	}
}

// BenchmarkClassifyCachedParallel is the cached path under contention.
func BenchmarkClassifyCachedParallel(b *testing.B) {
	Classify(Postgres, benchSQL)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			Classify(Postgres, benchSQL)
		}
	})
}

// BenchmarkClassifyCold classifies without the cache.
func BenchmarkClassifyCold(b *testing.B) {
	for _, c := range []struct{ name, sql string }{
		{"select", "SELECT id, name, email FROM users WHERE id = ?"},
		{"update", benchSQL},
		{"insert", "INSERT INTO users (id, name, email) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name"},
		{"cte", "WITH moved AS (DELETE FROM queue WHERE id = $1 RETURNING *) INSERT INTO done SELECT * FROM moved"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				classifyText(Postgres, c.sql)
			}
		})
	}
}

// TestCachedNoAlloc holds the cached path to zero allocations.
func TestCachedNoAlloc(t *testing.T) {
	Classify(MySQL, benchSQL)
	if n := testing.AllocsPerRun(100, func() { Classify(MySQL, benchSQL) }); n != 0 {
		t.Errorf("cached Classify allocates %v times; want 0", n)
	}
}

func TestCacheMiss(t *testing.T) {
	// Many distinct texts: each is classified and the cache stays bounded.
	for i := 0; i < 3*genEntries; i++ {
		s := Classify(Generic, "DELETE FROM t WHERE id = "+strconv.Itoa(i))
		if len(s.Writes) != 1 || s.Writes[0].Where[0].Values[0][0].Literal != int64(i) {
			t.Fatalf("text %d: got %v", i, s)
		}
	}
}

func TestConcurrent(t *testing.T) {
	done := make(chan bool)
	for g := 0; g < 4; g++ {
		go func() {
			for i := 0; i < 3000; i++ {
				sql := "UPDATE t SET x = 1 WHERE id = " + strconv.Itoa(i%500)
				if s := Classify(SQLite, sql); len(s.Writes) != 1 {
					t.Errorf("%q: %v", sql, s)
				}
			}
			done <- true
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}
