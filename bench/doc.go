// Package bench measures idmap against the plain driver, a hand-written
// rows.Scan loop, sqlx and scany, on the same data and in one run.
//
// It is a module of its own so that idmap's users never pull sqlx or scany.
// The benchmarks are in the _test.go files of this package; cmd/ratios runs
// them and prints the ratios that idmap's performance targets are stated in:
//
//	cd bench && go run ./cmd/ratios
//
// SQLite (github.com/mattn/go-sqlite3, in memory and a WAL file) always
// runs; MariaDB/MySQL and PostgreSQL run when IDMAP_MYSQL_DSN / IDMAP_PG_DSN
// are set (see scripts/start-servers.sh at the repository root).
package bench
