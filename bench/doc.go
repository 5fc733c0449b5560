// Package bench measures idmap against the plain driver, a hand-written
// rows.Scan loop, sqlx and scany, on the same data and in one run.
//
// It is a module of its own so that idmap's users never pull sqlx or scany.
// The benchmarks are in the _test.go files of this package:
//
//	BenchmarkPointQuery/<db>/{plain,idmap}
//	BenchmarkSelect100/<db>/{handScan,handScanIdmap,sqlx,scany,bindCold,bindWarm,bindSharedCold,bindSharedWarm}
//	BenchmarkGet/<db>/{hitScope,hitShared,missScope}
//	BenchmarkGetParallel/SQLiteMem/{shared1,shared2,scope1,scope2}
//	BenchmarkPaired/<db>/{pointQuery,select100}   the same sides, interleaved
//	BenchmarkSharedMemory                         bytes per weak entry, release
//
// cmd/ratios runs them and prints the ratios that idmap's performance
// targets are stated in (see BENCHMARKS.md at the repository root):
//
//	cd bench && go run ./cmd/ratios
//
// <db> is SQLiteMem and SQLiteWAL (github.com/mattn/go-sqlite3, in memory and
// a WAL file), which always run, and MySQL and Postgres, which run when
// IDMAP_MYSQL_DSN / IDMAP_PG_DSN are set (see scripts/start-servers.sh at the
// repository root) and are skipped with a message otherwise.
package bench
