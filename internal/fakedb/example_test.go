package fakedb_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/go-idmap/idmap/internal/fakedb"
)

func Example() {
	d := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
		switch q.Kind {
		case fakedb.KindQuery:
			return &fakedb.Result{
				Columns: []string{"id", "name"},
				Rows:    [][]driver.Value{{int64(1), "ann"}, {int64(2), "bob"}, {int64(3), "cy"}},
				ErrAt:   3, // an error instead of the third row
				RowErr:  errors.New("connection reset"),
			}, nil
		case fakedb.KindCommit:
			return nil, errors.New("serialization failure")
		}
		return nil, nil
	})
	db, err := sql.Open(d.Register(), "app.db") // or sql.OpenDB(d.Connector())
	if err != nil {
		panic(err)
	}
	defer db.Close()

	rows, err := db.Query("SELECT id, name FROM users WHERE id < ?", 10)
	if err != nil {
		panic(err)
	}
	for rows.Next() {
		var id int64
		var name string
		rows.Scan(&id, &name)
		fmt.Println(id, name)
	}
	fmt.Println("rows.Err:", rows.Err())
	rows.Close()

	tx, _ := db.Begin()
	fmt.Println("commit:", tx.Commit())

	for _, q := range d.Log(fakedb.KindQuery, fakedb.KindBegin, fakedb.KindCommit) {
		fmt.Println(q)
	}
	fmt.Println("leaks:", d.CheckLeaks())
	// Output:
	// 1 ann
	// 2 bob
	// rows.Err: connection reset
	// commit: serialization failure
	// conn 1 Query "SELECT id, name FROM users WHERE id < ?" [10]
	// conn 1 Begin
	// conn 1 Commit (tx)
	// leaks: <nil>
}
