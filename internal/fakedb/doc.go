// Package fakedb is a scriptable database/sql/driver for tests, in the
// manner of database/sql's own fakedb_test.go. It is internal to idmap and
// importable by idmap's tests and examples.
//
// A [Handler] decides what every call returns: the rows of a query (a
// [Result]), or an error for a connect, ping, prepare, query, exec, begin,
// commit or rollback. A Result can also inject a failure inside the rows:
// an error at row n (ErrAt), a panic (PanicAt), a hook that blocks before
// row n (BeforeRow, see [Pause]), or []byte values in reused buffers.
//
// [WithCaps] chooses which optional driver interfaces the driver, its
// connector, connections, statements and rows implement, so that a test
// can check that a wrapper exposes exactly the interfaces of the driver it
// wraps; [Variants] lists the combinations to run over. The Driver records
// every call it receives ([Driver.Log]) with its arguments as they reached
// the driver, and counts what is open ([Driver.Stats], [Driver.CheckLeaks]).
//
// Usage:
//
//	d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
//		switch {
//		case q.Kind == fakedb.KindQuery && strings.HasPrefix(q.SQL, "SELECT"):
//			return &fakedb.Result{
//				Columns: []string{"id", "name"},
//				Rows:    [][]driver.Value{{int64(1), "ann"}, {int64(2), "bob"}, {int64(3), "cy"}},
//				ErrAt:   3, // rows.Err() reports an error instead of the third row
//			}, nil
//		case q.Kind == fakedb.KindCommit:
//			return nil, errors.New("commit failed")
//		case q.Kind == fakedb.KindExec && q.ConnID == 1:
//			return nil, driver.ErrBadConn // database/sql retries on connection 2
//		}
//		return nil, nil
//	}, fakedb.WithCaps(fakedb.AllCaps&^fakedb.CapValidator))
//
//	db, err := sql.Open(d.Register(), "dsn") // or sql.OpenDB(d.Connector())
//	…
//	for _, q := range d.Log(fakedb.KindQuery, fakedb.KindExec) {
//		fmt.Println(q) // conn 1 Query "SELECT …" [42]
//	}
//	if err := d.CheckLeaks(); err != nil { … }
//
// The pickers in pick_gen.go are written by "go generate" (./gen).
package fakedb
