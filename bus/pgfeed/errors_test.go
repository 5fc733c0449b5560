package pgfeed_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

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
	f.Close()
	if err := f.Publish(ctx, nil); err == nil {
		t.Fatal("Publish on a closed feed returned nil")
	}
	if err := f.Subscribe(bus.Handler{}); err == nil {
		t.Fatal("Subscribe on a closed feed returned nil")
	}
}

// TestFeedOptionsInvalid: an option given a value outside its range is an
// error that names it, checked before connecting, by the rule of pgbus
// and redisbus (ApplicationName("") sent an empty application_name
// before, and a later valid option hid an earlier invalid one).
func TestFeedOptionsInvalid(t *testing.T) {
	for _, c := range []struct {
		option string
		opt    pgfeed.Option
	}{
		{"Publication", pgfeed.Publication("Bad-Name")},
		{"ExistingPublication", pgfeed.ExistingPublication("")},
		{"Tables", pgfeed.Tables()},
		{"ApplicationName", pgfeed.ApplicationName("")},
		{"ApplicationName", pgfeed.ApplicationName("a\x00b")},
		{"Backoff", pgfeed.Backoff(0, time.Second)},
		{"Backoff", pgfeed.Backoff(time.Second, time.Millisecond)},
		{"StatusInterval", pgfeed.StatusInterval(0)},
		{"StatusInterval", pgfeed.StatusInterval(-time.Second)},
		{"SyncTimeout", pgfeed.SyncTimeout(0)},
	} {
		// No server needed: the options are checked first.
		_, err := pgfeed.New(context.Background(), "postgres://u:pw@127.0.0.1:1/d", "x", c.opt, pgfeed.Backoff(time.Millisecond, time.Second))
		if want := "pgfeed: " + c.option + ": "; err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: got %v, want an error beginning %q", c.option, err, want)
		}
	}
}

// TestFeedReplicationRole: a role that is not a superuser, with the
// REPLICATION attribute, streams a publication made for it
// (ExistingPublication); with the CREATE privilege on the database and
// the ownership of the tables, it makes the publication itself.
func TestFeedReplicationRole(t *testing.T) {
	e := newEnv(t)
	role := unique("feedrole")
	password := "pw-" + role
	e.exec(`CREATE ROLE `+role+` LOGIN REPLICATION PASSWORD '`+password+`'`,
		`CREATE TABLE owned (id bigint PRIMARY KEY, v int)`, `INSERT INTO owned VALUES (1, 0)`)
	t.Cleanup(func() {
		e.exec(`DROP OWNED BY ` + role)
		e.exec(`DROP ROLE ` + role)
	})
	u, err := url.Parse(e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, password)
	ctx := context.Background()

	// Without the ownership of the table, making the publication fails and
	// says so; ExistingPublication then works.
	pub := unique("pub")
	_, err = pgfeed.New(ctx, u.String(), "feed_role", pgfeed.Publication(pub), pgfeed.Tables(e.schema+".owned"))
	if err == nil {
		t.Fatal("a role that owns nothing made a publication")
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("the error shows the password: %v", err)
	}
	e.exec(`CREATE PUBLICATION ` + pub + ` FOR TABLE ` + e.schema + `.owned`)
	t.Cleanup(func() { e.exec(`DROP PUBLICATION IF EXISTS ` + pub) })

	// Owning the table, with CREATE on the database, it makes its own.
	var dbName string
	if err := e.plain.QueryRow(`SELECT current_database()`).Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	e.exec(`ALTER TABLE owned OWNER TO `+role, `GRANT USAGE ON SCHEMA `+e.schema+` TO `+role,
		`GRANT CREATE ON DATABASE "`+dbName+`" TO `+role)
	own := unique("pub")
	f0, err := pgfeed.New(ctx, u.String(), "feed_role", pgfeed.Publication(own), pgfeed.Tables(e.schema+".owned"))
	if err != nil {
		t.Fatalf("a role owning the table: %v", err)
	}
	f0.Close()
	e.exec(`DROP PUBLICATION ` + own)
	f, err := pgfeed.New(ctx, u.String(), "feed_role", pgfeed.ExistingPublication(pub))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make(chan bus.Message, 16)
	if err := f.Subscribe(bus.Handler{Message: func(m bus.Message) { got <- m }, Gap: func(bus.Gap) {}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the feed streams", func() bool { return f.Slot() != "" })
	e.exec(`UPDATE owned SET v = 1 WHERE id = 1`)
	select {
	case m := <-got:
		if m.Table != "owned" || len(m.Keys) != 1 || m.Keys[0] != int64(1) || m.DB != "feed_role" {
			t.Fatalf("message %+v", m)
		}
	case <-time.After(waitFor):
		t.Fatal("no message")
	}
}
