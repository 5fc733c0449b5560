package idmap_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"testing"

	"github.com/ngrok/sqlmw"

	"github.com/go-idmap/idmap"
	"io"
)

// BenchmarkQueryOverhead measures what a query costs through the wrappers
// alone: a driver that answers from memory in a few hundred nanoseconds, used
// plain, behind sqlmw with a NullInterceptor, and behind idmap. idmap's own
// share of a query is idmap − sqlmwNull; sqlmw's is sqlmwNull − plain.
func BenchmarkQueryOverhead(b *testing.B) {
	var d fastConnector
	plain := sql.OpenDB(d)
	null := sql.OpenDB(nullConnector{d})
	idm := sql.OpenDB(idmap.NewConnector(d, idmap.Dialect("sqlite")))
	for _, c := range []struct {
		name string
		db   *sql.DB
	}{{"plain", plain}, {"sqlmwNull", null}, {"idmap", idm}} {
		defer c.db.Close()
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var u User
			for b.Loop() {
				if err := c.db.QueryRow("SELECT id, name, email FROM users WHERE id = ?", 42).Scan(&u.ID, &u.Name, &u.Email); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// nullConnector connects through sqlmw with a NullInterceptor.
type nullConnector struct{ c driver.Connector }

func (n nullConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := n.c.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return sqlmw.Driver(oneConnDrv{c}, sqlmw.NullInterceptor{}).Open("")
}
func (n nullConnector) Driver() driver.Driver { return n.c.Driver() }

type oneConnDrv struct{ c driver.Conn }

func (o oneConnDrv) Open(string) (driver.Conn, error) { return o.c, nil }

// fastConnector is a driver that answers every query with one row of
// users (id, name, email), from memory.
type fastConnector struct{}

func (fastConnector) Connect(context.Context) (driver.Conn, error) { return &fastConn{}, nil }
func (fastConnector) Driver() driver.Driver                        { return fastDrv{} }

type fastDrv struct{}

func (fastDrv) Open(string) (driver.Conn, error) { return &fastConn{}, nil }

type fastConn struct{}

func (*fastConn) Prepare(string) (driver.Stmt, error) { return nil, driver.ErrSkip }
func (*fastConn) Close() error                        { return nil }
func (*fastConn) Begin() (driver.Tx, error)           { return nil, driver.ErrSkip }
func (*fastConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return &fastRows{}, nil
}

var fastCols = []string{"id", "name", "email"}

type fastRows struct{ n int }

func (*fastRows) Columns() []string { return fastCols }
func (*fastRows) Close() error      { return nil }
func (r *fastRows) Next(dest []driver.Value) error {
	if r.n > 0 {
		return io.EOF
	}
	r.n++
	dest[0], dest[1], dest[2] = int64(42), "ann", "ann@example.com"
	return nil
}
