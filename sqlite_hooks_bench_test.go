package idmap_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/go-idmap/idmap"
)

// BenchmarkSQLiteHooks measures what SQLite's hooks cost: per changed row
// (an UPDATE of 100 rows, and of one row by key) and on a read (a point
// query), each against the same statement on a connection without hooks,
// in the same loop (the sides alternate, so that the machine's noise falls
// on all alike). Besides wall time, each side's CPU time on the benchmark's
// thread is measured (CLOCK_THREAD_CPUTIME_ID): on a loaded machine it is
// the steadier measure of what the hooks add. The hook is the preupdate hook with the build tag
// sqlite_preupdate_hook, else mattn's update hook; "reflect" is the
// preupdate callback made with reflect.MakeFunc instead of the
// layout-checked one (the same as hooks without the tag); "exact" is hooks
// with ExactExpiry (only the rows the preupdate hook reports expire: the
// statement reader's table-wide expiry is not done).
func BenchmarkSQLiteHooks(b *testing.B) {
	dsn := "file:" + filepath.Join(b.TempDir(), "hooks.db") + "?_journal_mode=WAL&_synchronous=OFF"
	open := func(hooks, fast bool, opts ...idmap.Option) *sql.DB {
		defer idmap.SetEngineHooks(hooks)()
		defer idmap.SetPreupdateFastPath(fast)()
		db, err := idmap.Open("sqlite3", dsn, append(opts, idmap.Name("bench-hooks"))...)
		if err != nil {
			b.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		if err := db.Ping(); err != nil { // the connection, made now
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	}
	off := open(false, true)
	seedUsers(b, off, 200)
	on := open(true, true)
	slow := open(true, false)
	exact := open(true, true, idmap.ExactExpiry())
	names := []string{"off", "hooks", "reflect", "exact"}
	dbs := []*sql.DB{off, on, slow, exact}
	ctx := idmap.NewContext(context.Background())
	for _, db := range dbs { // the first change tells which hook fires
		mustExec(b, db, "UPDATE users SET email = 'w' WHERE id = 1")
	}
	mode := hookMode(&testing.T{}, on)

	run := func(b *testing.B, rows int, f func(db *sql.DB, i int) error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var total, cpu [4]time.Duration
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			for k := range dbs {
				j := (i + k) % len(dbs)
				t0, c0 := time.Now(), threadCPU()
				if err := f(dbs[j], i); err != nil {
					b.Fatal(err)
				}
				cpu[j] += threadCPU() - c0
				total[j] += time.Since(t0)
			}
		}
		for j, n := range names {
			b.ReportMetric(float64(total[j].Nanoseconds())/float64(b.N), n+"-ns/op")
			b.ReportMetric(float64(cpu[j].Nanoseconds())/float64(b.N), n+"-cpu-ns/op")
		}
		for j := 1; j < len(dbs); j++ {
			b.ReportMetric(float64(cpu[j]-cpu[0])/float64(b.N)/float64(rows), names[j]+"-extra-cpu-ns/row")
			b.ReportMetric(float64(cpu[j])/float64(cpu[0]), names[j]+"/off-cpu")
			b.ReportMetric(float64(total[j])/float64(total[0]), names[j]+"/off-wall")
		}
	}
	b.Logf("hook: %s", mode)
	b.Run("update200", func(b *testing.B) {
		run(b, 200, func(db *sql.DB, i int) error {
			_, err := db.ExecContext(ctx, "UPDATE users SET email = ? WHERE id BETWEEN 1 AND 200", i)
			return err
		})
	})
	b.Run("update1", func(b *testing.B) {
		run(b, 1, func(db *sql.DB, i int) error {
			_, err := db.ExecContext(ctx, "UPDATE users SET email = ? WHERE id = ?", i, 1+i%200)
			return err
		})
	})
	b.Run("pointQuery", func(b *testing.B) {
		var u User
		run(b, 1, func(db *sql.DB, i int) error {
			return db.QueryRowContext(ctx, "SELECT id, name, email FROM users WHERE id = ?", 1+i%200).Scan(&u.ID, &u.Name, &u.Email)
		})
	})
}

// threadCPU returns the CPU time of the calling thread.
func threadCPU() time.Duration {
	var ts syscall.Timespec
	const clockThreadCPUTimeID = 3
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}
