package pgfeed_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/bus/pgfeed"
)

// TestFeedDefaultPublication: without Tables, the feed publishes the
// tables of the search_path's schemas that have a primary key, and leaves
// out a table without one, on which UPDATE and DELETE keep working (in a
// publication they would fail with SQLSTATE 55000).
func TestFeedDefaultPublication(t *testing.T) {
	e := newEnv(t)
	e.exec(`CREATE TABLE keyed (id bigint PRIMARY KEY, v int)`, `CREATE TABLE loose (v int)`, `INSERT INTO loose VALUES (1)`)
	pub := unique("pub")
	f, err := pgfeed.New(context.Background(), e.dsn, "feed_default", pgfeed.Publication(pub))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		f.Close()
		e.exec("DROP PUBLICATION IF EXISTS " + pub)
	}()
	var tables []string
	rows, err := e.plain.Query(`SELECT tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`, pub)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		tables = append(tables, s)
	}
	if strings.Join(tables, ",") != "keyed" {
		t.Fatalf("published tables = %v; want [keyed]", tables)
	}
	e.exec(`UPDATE loose SET v = 2`, `DELETE FROM loose`)

	// Naming a table without a key is an error that says why.
	_, err = pgfeed.New(context.Background(), e.dsn, "feed_default", pgfeed.Publication(unique("pub")), pgfeed.Tables(e.schema+".loose"))
	if err == nil || !strings.Contains(err.Error(), "no primary key") {
		t.Fatalf("Tables(loose): %v; want an error about its missing key", err)
	}
}

func TestFeedErrors(t *testing.T) {
	dsn := pgDSN(t)
	ctx := context.Background()
	if _, err := pgfeed.New(ctx, dsn, ""); err == nil || !strings.HasPrefix(err.Error(), "pgfeed: ") {
		t.Fatalf("no database name: %v", err)
	}
	if _, err := pgfeed.New(ctx, dsn, "x", pgfeed.Publication("Bad-Name")); err == nil {
		t.Fatal("a publication name that needs quoting was accepted")
	}
	if _, err := pgfeed.New(ctx, dsn, "x", pgfeed.Publication(unique("pub")), pgfeed.Tables("no_such_table_anywhere")); err == nil || !strings.Contains(err.Error(), "no table") {
		t.Fatalf("unknown table: %v", err)
	}
	if _, err := pgfeed.New(ctx, dsn, "x", pgfeed.ExistingPublication(unique("pub"))); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing existing publication: %v", err)
	}
	// A wrong password never appears in the error.
	u, _ := url.Parse(dsn)
	secret := "Sup3r-s3cret-pw"
	u.User = url.UserPassword(u.User.Username(), secret)
	_, err := pgfeed.New(ctx, u.String(), "x")
	if err == nil || strings.Contains(err.Error(), secret) || !strings.HasPrefix(err.Error(), "pgfeed: ") {
		t.Fatalf("wrong password: %v", err)
	}

	e := newEnv(t)
	e.exec(`CREATE TABLE k (id int PRIMARY KEY)`)
	f := e.feed("feed_errors", []string{"k"})
	if err := f.Subscribe(bus.Handler{}); err != nil {
		t.Fatal(err)
	}
	if err := f.Subscribe(bus.Handler{}); err == nil {
		t.Fatal("a second Subscribe was accepted")
	}
	f.Close()
	if err := f.Publish(ctx, nil); err == nil {
		t.Fatal("Publish on a closed feed returned nil")
	}
	if err := f.Subscribe(bus.Handler{}); err == nil {
		t.Fatal("Subscribe on a closed feed returned nil")
	}
}
