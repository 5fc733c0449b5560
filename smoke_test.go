package idmap_test

import (
	"context"
	"database/sql"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"github.com/go-idmap/idmap"
)

type sUser struct {
	ID     int64  `db:"id"`
	Name   string `db:"name"`
	Visits int    `db:"-"`
}

func (sUser) TableName() string { return "users" }

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("idmap+sqlite3", "file:smoke?mode=memory&cache=shared")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1,'ann'),(2,'bob')`); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, "SELECT id, name FROM users ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var us []*sUser
	if err := idmap.Bind(rows, &us); err != nil {
		t.Fatal(err)
	}
	us[0].Visits = 7
	u, err := idmap.Get[sUser](ctx, db, 1)
	if err != nil {
		t.Fatal(err)
	}
	if u != us[0] || u.Visits != 7 {
		t.Fatalf("got %p %+v want %p", u, u, us[0])
	}
	tx, _ := db.BeginTx(ctx, nil)
	u2, err := idmap.Get[sUser](ctx, tx, "1")
	if err != nil {
		t.Fatal(err)
	}
	if u2 == u {
		t.Fatal("tx shares shared map")
	}
	tx.Rollback()
	t.Log(idmap.NameOf(db), us[0], us[1])
}
