// Package interop shows idmap working with the libraries users already
// have: sqlx and scany scan, then idmap.Intern makes their objects
// canonical; sqlc-style generated code likewise; GORM runs on the idmap
// driver, so that its writes expire what they touch.
//
// The runnable examples in example_test.go (Example_sqlx, Example_scany,
// Example_sqlc, Example_gorm) show each, ready to copy; run them with
// `go test -run Example -v .`. Example_sqlxPostgres shows sqlx on
// PostgreSQL, which needs sqlx.BindDriver("idmap+pgx", sqlx.DOLLAR) (and
// the same for "idmap+postgres"): sqlx picks its bind variables by driver
// name. TestSqlxPostgresBindDriver runs it when IDMAP_PG_DSN is set.
//
// It is a module of its own, so that idmap's users never pull these
// libraries. Run its tests with `cd interop && go test ./...`.
package interop
