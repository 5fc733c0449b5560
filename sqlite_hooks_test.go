package idmap_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mattn/go-sqlite3"
	"github.com/ngrok/sqlmw"
	_ "modernc.org/sqlite"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
)

// Contract tests of SQLite's hooks as the source of truth for row changes:
// one test per class of write that the engine makes and the statement text
// does not name, on mattn/go-sqlite3 (with or without the build tag
// sqlite_preupdate_hook: CI runs these tests both ways), on mattn behind an
// instrumentation wrapper (sqlmw), and on modernc.org/sqlite.

type hookDriver struct {
	name  string
	mode  string // the hook that reports row changes
	exact bool   // opened with ExactExpiry
	open  func(t *testing.T, opts ...idmap.Option) *sql.DB
}

func hookDrivers() []hookDriver {
	mattnMode := "update"
	if mattnPreupdate {
		mattnMode = "preupdate"
	}
	mattnDSN := func(t *testing.T) string {
		return sqliteDSN(t, "t.db")
	}
	open := func(t *testing.T, base, dsn string, opts []idmap.Option) *sql.DB {
		db, err := idmap.Open(base, dsn, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	return []hookDriver{
		{name: "mattn", mode: mattnMode, open: func(t *testing.T, opts ...idmap.Option) *sql.DB {
			return open(t, "sqlite3", mattnDSN(t), opts)
		}},
		{name: "mattnWrapped", mode: mattnMode, open: func(t *testing.T, opts ...idmap.Option) *sql.DB {
			return open(t, registerCounted("sqlite3", &sqlite3.SQLiteDriver{}, &counter{}), mattnDSN(t), opts)
		}},
		{name: "mattnLazy", mode: mattnMode, open: func(t *testing.T, opts ...idmap.Option) *sql.DB {
			return open(t, registerLazy("sqlite3", &sqlite3.SQLiteDriver{}), mattnDSN(t), opts)
		}},
		{name: "modernc", mode: "preupdate", open: func(t *testing.T, opts ...idmap.Option) *sql.DB {
			return open(t, "sqlite", moderncDSN(t), opts)
		}},
		{name: "moderncLazy", mode: "preupdate", open: func(t *testing.T, opts ...idmap.Option) *sql.DB {
			probe, _ := sql.Open("sqlite", ":memory:")
			base := probe.Driver()
			probe.Close()
			return open(t, registerLazy("sqlite", base), moderncDSN(t), opts)
		}},
	}
}

func moderncDSN(t *testing.T) string {
	return "file:" + filepath.Join(t.TempDir(), "t.db") + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
}

// registerLazy registers base behind a wrapper whose queries run at the
// first Next (or Columns), as a driver that does not step a statement
// until its rows are read (mattn and modernc take the first step in
// QueryContext): a write through the query path (… RETURNING) then
// changes its rows after idmap's interceptor has returned. It returns the
// name to open "idmap+"+name with.
func registerLazy(prefix string, base driver.Driver) string {
	name := fmt.Sprintf("%s-lazy-%d", prefix, dbSeq.Add(1)) // the prefix tells idmap the dialect
	sql.Register(name, sqlmw.Driver(base, lazyQueries{}))
	idmap.Register(name)
	return name
}

type lazyQueries struct{ sqlmw.NullInterceptor }

func (lazyQueries) ConnQueryContext(ctx context.Context, conn driver.QueryerContext, q string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	return ctx, &lazyRows{open: func() (driver.Rows, error) { return conn.QueryContext(ctx, q, args) }}, nil
}

func (lazyQueries) StmtQueryContext(ctx context.Context, st driver.StmtQueryContext, _ string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	return ctx, &lazyRows{open: func() (driver.Rows, error) { return st.QueryContext(ctx, args) }}, nil
}

type lazyRows struct {
	open func() (driver.Rows, error)
	r    driver.Rows
	err  error
}

func (l *lazyRows) run() error {
	if l.r == nil && l.err == nil {
		l.r, l.err = l.open()
	}
	return l.err
}

func (l *lazyRows) Columns() []string {
	if l.run() != nil {
		return nil
	}
	return l.r.Columns()
}

func (l *lazyRows) Next(dest []driver.Value) error {
	if err := l.run(); err != nil {
		return err
	}
	return l.r.Next(dest)
}

func (l *lazyRows) Close() error {
	if l.r == nil {
		return nil
	}
	return l.r.Close()
}

// forEachHookDriver runs f on a new database of each SQLite driver, kept to
// one connection (TEMP objects and ATTACH belong to a connection), with and
// without ExactExpiry.
func forEachHookDriver(t *testing.T, f func(t *testing.T, d hookDriver, db *sql.DB, ctx context.Context)) {
	for _, d := range hookDrivers() {
		for _, exact := range []bool{false, true} {
			name := d.name
			var opts []idmap.Option
			if exact {
				name += "/exact"
				opts = append(opts, idmap.ExactExpiry())
			}
			d.exact = exact
			t.Run(name, func(t *testing.T) {
				db := d.open(t, opts...)
				t.Cleanup(func() { db.Close() })
				db.SetMaxOpenConns(1)
				f(t, d, db, idmap.NewContext(context.Background()))
				if got := hookMode(t, db); got != d.mode {
					t.Errorf("hook mode %q; want %q", got, d.mode)
				}
			})
		}
	}
}

func hookMode(t *testing.T, db *sql.DB) string {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mode string
	c.Raw(func(dc any) error { mode = idmap.HookMode(dc); return nil })
	return mode
}

type hkUser struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

func (hkUser) TableName() string { return "hk_users" }

type hkMember struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

func (hkMember) TableName() string { return "hk_members" }

type hkAccount struct {
	ID    int64  `db:"id"`
	Email string `db:"email"`
	Name  string `db:"name"`
}

func (hkAccount) TableName() string { return "hk_accounts" }

type hkSession struct {
	ID        int64 `db:"id"`
	AccountID int64 `db:"account_id"`
}

func (hkSession) TableName() string { return "hk_sessions" }

type hkNote struct {
	ID        int64         `db:"id"`
	AccountID sql.NullInt64 `db:"account_id"`
}

func (hkNote) TableName() string { return "hk_notes" }

type hkCode struct {
	Code  string `db:"code,pk"`
	Label string `db:"label"`
}

func (hkCode) TableName() string { return "hk_codes" }

// fresh checks that Get returns want (nil: no row) and that Cached serves
// nothing else.
func fresh[T comparable](t *testing.T, ctx context.Context, db *sql.DB, want *T, key ...any) {
	t.Helper()
	if c := idmap.Cached[T](ctx, db, key...); c != nil && (want == nil || *c != *want) {
		t.Errorf("Cached %v serves %+v; the database has %+v", key, *c, want)
	}
	got, err := idmap.Get[T](ctx, db, key...)
	switch {
	case want == nil && !errors.Is(err, sql.ErrNoRows):
		t.Errorf("Get %v = %+v, %v; want sql.ErrNoRows", key, got, err)
	case want != nil && err != nil:
		t.Errorf("Get %v: %v", key, err)
	case want != nil && *got != *want:
		t.Errorf("Get %v = %+v; want %+v", key, *got, *want)
	}
}

// kept checks that a row the write did not change is still served without
// a query (with ExactExpiry, where the preupdate hook reports every row;
// else the statement reader widens).
func kept[T any](t *testing.T, d hookDriver, ctx context.Context, db *sql.DB, key ...any) {
	t.Helper()
	if d.mode != "preupdate" || !d.exact {
		return
	}
	if idmap.Cached[T](ctx, db, key...) == nil {
		t.Errorf("Cached %v: nil; the write did not change the row, and the preupdate hook says so", key)
	}
}

func load[T any](t *testing.T, ctx context.Context, db *sql.DB, keys ...any) {
	t.Helper()
	for _, k := range keys {
		if _, err := idmap.Get[T](ctx, db, k); err != nil {
			t.Fatalf("Get %v: %v", k, err)
		}
	}
}

func TestSQLiteHooksTempTrigger(t *testing.T) {
	forEachHookDriver(t, func(t *testing.T, d hookDriver, db *sql.DB, ctx context.Context) {
		mustExec(t, db, "CREATE TABLE hk_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
		mustExec(t, db, "CREATE TABLE hk_orders (id INTEGER PRIMARY KEY, uid INTEGER NOT NULL)")
		mustExec(t, db, "INSERT INTO hk_users VALUES (1, 'ann'), (2, 'bob')")
		mustExec(t, db, `CREATE TEMP TRIGGER hk_ordered AFTER INSERT ON main.hk_orders
			BEGIN UPDATE hk_users SET name = 'ordered' WHERE id = new.uid; END`)
		load[hkUser](t, ctx, db, 1, 2)
		mustExec(t, db, "INSERT INTO hk_orders (id, uid) VALUES (10, ?)", 1)
		fresh(t, ctx, db, &hkUser{1, "ordered"}, 1)
		kept[hkUser](t, d, ctx, db, 2)
	})
}

func TestSQLiteHooksAttachedTrigger(t *testing.T) {
	forEachHookDriver(t, func(t *testing.T, d hookDriver, db *sql.DB, ctx context.Context) {
		aux := filepath.Join(t.TempDir(), "aux.db")
		mustExec(t, db, "ATTACH DATABASE ? AS aux", aux)
		mustExec(t, db, "CREATE TABLE aux.hk_members (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
		mustExec(t, db, "CREATE TABLE aux.hk_events (id INTEGER PRIMARY KEY, mid INTEGER, what TEXT)")
		mustExec(t, db, `CREATE TRIGGER aux.hk_event AFTER INSERT ON hk_events
			BEGIN UPDATE hk_members SET name = new.what WHERE id = new.mid; END`)
		mustExec(t, db, "INSERT INTO aux.hk_members VALUES (1, 'ann'), (2, 'bob')")
		load[hkMember](t, ctx, db, 1, 2)
		mustExec(t, db, "INSERT INTO aux.hk_events (mid, what) VALUES (?, ?)", 1, "renamed")
		fresh(t, ctx, db, &hkMember{1, "renamed"}, 1)
		kept[hkMember](t, d, ctx, db, 2)
		// Unqualified, the name resolves to the attached table too.
		mustExec(t, db, "INSERT INTO hk_events (mid, what) VALUES (?, ?)", 2, "again")
		fresh(t, ctx, db, &hkMember{2, "again"}, 2)
	})
}

// accountsDDL: a unique column that REPLACEs on conflict, by the table's
// definition, and two children whose foreign-key actions follow the rows
// it deletes.
var accountsDDL = []string{
	"CREATE TABLE hk_accounts (id INTEGER PRIMARY KEY, email TEXT UNIQUE ON CONFLICT REPLACE, name TEXT NOT NULL DEFAULT '')",
	"CREATE TABLE hk_sessions (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES hk_accounts(id) ON DELETE CASCADE)",
	"CREATE TABLE hk_notes (id INTEGER PRIMARY KEY, account_id INTEGER REFERENCES hk_accounts(id) ON DELETE SET NULL)",
	"INSERT INTO hk_accounts VALUES (1, 'a@x', 'ann'), (2, 'b@x', 'bob'), (5, 'e@x', 'eve')",
	"INSERT INTO hk_sessions VALUES (10, 1), (11, 2), (15, 5)",
	"INSERT INTO hk_notes VALUES (20, 1), (21, 2), (25, 5)",
}

func TestSQLiteHooksConflictReplaceInDefinition(t *testing.T) {
	forEachHookDriver(t, func(t *testing.T, d hookDriver, db *sql.DB, ctx context.Context) {
		for _, q := range accountsDDL {
			mustExec(t, db, q)
		}
		load[hkAccount](t, ctx, db, 1, 2, 5)
		load[hkSession](t, ctx, db, 10, 11, 15)
		load[hkNote](t, ctx, db, 20, 21, 25)

		// A plain INSERT whose email is account 1's deletes account 1.
		mustExec(t, db, "INSERT INTO hk_accounts (id, email, name) VALUES (?, ?, ?)", 3, "a@x", "new")
		fresh[hkAccount](t, ctx, db, nil, 1)
		fresh(t, ctx, db, &hkAccount{3, "a@x", "new"}, 3)
		fresh[hkSession](t, ctx, db, nil, 10)
		fresh(t, ctx, db, &hkNote{20, sql.NullInt64{}}, 20)

		// A plain UPDATE by key to account 2's email deletes account 2.
		mustExec(t, db, "UPDATE hk_accounts SET email = ? WHERE id = ?", "b@x", 3)
		fresh[hkAccount](t, ctx, db, nil, 2)
		fresh[hkSession](t, ctx, db, nil, 11)
		fresh(t, ctx, db, &hkNote{21, sql.NullInt64{}}, 21)

		kept[hkAccount](t, d, ctx, db, 5)
		kept[hkSession](t, d, ctx, db, 15)
		kept[hkNote](t, d, ctx, db, 25)
	})
}

func TestSQLiteHooksInsertOrReplace(t *testing.T) {
	forEachHookDriver(t, func(t *testing.T, d hookDriver, db *sql.DB, ctx context.Context) {
		mustExec(t, db, "CREATE TABLE hk_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
		mustExec(t, db, "INSERT INTO hk_users VALUES (1, 'ann'), (2, 'bob'), (3, 'cid')")
		load[hkUser](t, ctx, db, 1, 2, 3)
		mustExec(t, db, "INSERT OR REPLACE INTO hk_users (id, name) VALUES (?, ?)", 4, "ann")
		fresh[hkUser](t, ctx, db, nil, 1)
		fresh(t, ctx, db, &hkUser{4, "ann"}, 4)
		kept[hkUser](t, d, ctx, db, 2)
		mustExec(t, db, "REPLACE INTO hk_users (id, name) VALUES (?, ?)", 2, "cid")
		fresh[hkUser](t, ctx, db, nil, 3)
		fresh(t, ctx, db, &hkUser{2, "cid"}, 2)
		mustExec(t, db, "UPDATE OR REPLACE hk_users SET name = ? WHERE id = ?", "cid", 4)
		fresh[hkUser](t, ctx, db, nil, 2)
		fresh(t, ctx, db, &hkUser{4, "cid"}, 4)
	})
}

func TestSQLiteHooksUpsert(t *testing.T) {
	forEachHookDriver(t, func(t *testing.T, d hookDriver, db *sql.DB, ctx context.Context) {
		mustExec(t, db, "CREATE TABLE hk_accounts (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT NOT NULL)")
		mustExec(t, db, "INSERT INTO hk_accounts VALUES (1, 'a@x', 'ann'), (2, 'b@x', 'bob')")
		load[hkAccount](t, ctx, db, 1, 2)
		// The conflict is on email: the row updated is not the one the
		// values name.
		mustExec(t, db, "INSERT INTO hk_accounts (id, email, name) VALUES (?, ?, ?) ON CONFLICT (email) DO UPDATE SET name = excluded.name", 9, "a@x", "upserted")
		fresh(t, ctx, db, &hkAccount{1, "a@x", "upserted"}, 1)
		fresh[hkAccount](t, ctx, db, nil, 9)
		kept[hkAccount](t, d, ctx, db, 2)
		// The update part changes the key.
		mustExec(t, db, "INSERT INTO hk_accounts (id, email, name) VALUES (?, ?, ?) ON CONFLICT (email) DO UPDATE SET id = 7", 9, "b@x", "x")
		fresh[hkAccount](t, ctx, db, nil, 2)
		fresh(t, ctx, db, &hkAccount{7, "b@x", "bob"}, 7)
	})
}

func TestSQLiteHooksDeleteWithoutWhere(t *testing.T) {
	forEachHookDriver(t, func(t *testing.T, d hookDriver, db *sql.DB, ctx context.Context) {
		for _, q := range accountsDDL {
			mustExec(t, db, q)
		}
		mustExec(t, db, "CREATE TABLE hk_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
		mustExec(t, db, "INSERT INTO hk_users VALUES (1, 'ann'), (2, 'bob')")
		load[hkUser](t, ctx, db, 1, 2)
		load[hkAccount](t, ctx, db, 1, 2)
		load[hkSession](t, ctx, db, 10)
		load[hkNote](t, ctx, db, 20)
		// No foreign key, no trigger: SQLite's truncation.
		mustExec(t, db, "DELETE FROM hk_users")
		fresh[hkUser](t, ctx, db, nil, 1)
		fresh[hkUser](t, ctx, db, nil, 2)
		kept[hkAccount](t, d, ctx, db, 1)
		// With foreign-key actions.
		mustExec(t, db, "DELETE FROM hk_accounts")
		fresh[hkAccount](t, ctx, db, nil, 1)
		fresh[hkSession](t, ctx, db, nil, 10)
		fresh(t, ctx, db, &hkNote{20, sql.NullInt64{}}, 20)
	})
}

func TestSQLiteHooksWithoutRowid(t *testing.T) {
	forEachHookDriver(t, func(t *testing.T, d hookDriver, db *sql.DB, ctx context.Context) {
		mustExec(t, db, "CREATE TABLE hk_codes (code TEXT PRIMARY KEY, label TEXT NOT NULL) WITHOUT ROWID")
		mustExec(t, db, "CREATE TABLE hk_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
		mustExec(t, db, "INSERT INTO hk_codes VALUES ('A', 'a'), ('B', 'b'), ('C', 'c')")
		mustExec(t, db, "INSERT INTO hk_users VALUES (1, 'ann')")
		mustExec(t, db, `CREATE TEMP TRIGGER hk_label AFTER UPDATE ON main.hk_users
			BEGIN UPDATE hk_codes SET label = new.name WHERE code = 'A'; END`)
		load[hkCode](t, ctx, db, "A", "B", "C")
		mustExec(t, db, "UPDATE hk_users SET name = ? WHERE id = ?", "zed", 1)
		fresh(t, ctx, db, &hkCode{"A", "zed"}, "A")
		kept[hkCode](t, d, ctx, db, "B")
		// By a condition the reader cannot key: the rows' keys come from
		// their old values.
		mustExec(t, db, "UPDATE hk_codes SET label = 'bee' WHERE label = ?", "b")
		fresh(t, ctx, db, &hkCode{"B", "bee"}, "B")
		kept[hkCode](t, d, ctx, db, "C")
		// The key changes.
		mustExec(t, db, "UPDATE hk_codes SET code = 'D' WHERE label = ?", "c")
		fresh[hkCode](t, ctx, db, nil, "C")
		fresh(t, ctx, db, &hkCode{"D", "c"}, "D")
	})
}

// TestSQLiteHooksTransaction: what the hooks report is recorded with the
// transaction: seen by its own map at once, by the others at commit, and
// expired again at rollback.
func TestSQLiteHooksTransaction(t *testing.T) {
	forEachHookDriver(t, func(t *testing.T, d hookDriver, db *sql.DB, ctx context.Context) {
		mustExec(t, db, "CREATE TABLE hk_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
		mustExec(t, db, "INSERT INTO hk_users VALUES (1, 'ann'), (2, 'bob')")
		load[hkUser](t, ctx, db, 1, 2)
		for _, commit := range []bool{false, true} {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, "UPDATE hk_users SET name = name || '!' WHERE name LIKE 'a%'"); err != nil {
				t.Fatal(err)
			}
			if u, err := idmap.Get[hkUser](ctx, tx, 1); err != nil || u.Name != "ann!" {
				t.Fatalf("in the transaction: Get 1 = %+v, %v; want ann!", u, err)
			}
			if commit {
				err = tx.Commit()
			} else {
				err = tx.Rollback()
			}
			if err != nil {
				t.Fatal(err)
			}
			want := "ann"
			if commit {
				want = "ann!"
			}
			fresh(t, ctx, db, &hkUser{1, want}, 1)
			kept[hkUser](t, d, ctx, db, 2)
		}
	})
}

// TestSQLiteHooksReturning: a write through the query path reports its rows
// while they are read; they are expired when the rows close.
func TestSQLiteHooksReturning(t *testing.T) {
	forEachHookDriver(t, func(t *testing.T, d hookDriver, db *sql.DB, ctx context.Context) {
		mustExec(t, db, "CREATE TABLE hk_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
		mustExec(t, db, "INSERT INTO hk_users VALUES (1, 'ann'), (2, 'bob'), (3, 'cid')")
		load[hkUser](t, ctx, db, 1, 2, 3)
		rs, err := db.QueryContext(ctx, "UPDATE hk_users SET name = upper(name) WHERE name < 'c' RETURNING id, name")
		if err != nil {
			t.Fatal(err)
		}
		var got []*hkUser
		if err := idmap.Bind(rs, &got); err != nil {
			t.Fatal(err)
		}
		fresh(t, ctx, db, &hkUser{1, "ANN"}, 1)
		fresh(t, ctx, db, &hkUser{2, "BOB"}, 2)
		kept[hkUser](t, d, ctx, db, 3)
	})
}

// TestSQLiteHooksOff: with the hooks turned off (the knob the model test
// uses), connections report nothing and the statement reader does it all.
func TestSQLiteHooksOff(t *testing.T) {
	defer idmap.SetEngineHooks(false)()
	for _, d := range hookDrivers() {
		t.Run(d.name, func(t *testing.T) {
			db := d.open(t)
			defer db.Close()
			if got := hookMode(t, db); got != "off" {
				t.Errorf("hook mode %q; want off", got)
			}
		})
	}
}

// TestRandomizedModelEngineHooks runs the randomized model on a schema
// where the engine writes rows that no statement names: a TEMP trigger
// (on every connection) that spills an update onto another row, a unique
// column that REPLACEs on conflict by the table's definition (a plain
// UPDATE or INSERT deletes another row), foreign-key actions (ON UPDATE
// CASCADE from the groups), and a string of statements whose second one
// fails after the first committed. With the hooks it must find no
// violation; with them turned off it must find some (so that it can fail).
// The "hooks exact" run uses ExactExpiry: with the preupdate hook (build tag
// sqlite_preupdate_hook), only the rows the engine reports expire.
func TestRandomizedModelEngineHooks(t *testing.T) {
	workers, steps := 4, modelStepCount(200)
	base := fmt.Sprintf("sqlite3-model-hooks-%d", dbSeq.Add(1))
	sql.Register(base, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		for _, q := range []string{
			"CREATE TABLE IF NOT EXISTS grps (id INTEGER PRIMARY KEY)",
			"INSERT OR IGNORE INTO grps VALUES (0), (1), (2), (3)",
			`CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY,
				grp INTEGER NOT NULL REFERENCES grps(id) ON UPDATE CASCADE,
				val INTEGER NOT NULL, slot INTEGER UNIQUE ON CONFLICT REPLACE)`,
			`CREATE TEMP TRIGGER IF NOT EXISTS items_spill AFTER UPDATE OF val ON main.items WHEN new.val % 5 = 0
				BEGIN UPDATE main.items SET val = val + 1 WHERE id = new.id % 16 + 1 AND id <> new.id; END`,
		} {
			if _, err := c.Exec(q, nil); err != nil {
				return err
			}
		}
		return nil
	}})
	for _, run := range []struct {
		name      string
		on, exact bool
	}{{"hooks", true, false}, {"hooks exact", true, true}, {"hooks off", false, false}} {
		on := run.on
		t.Run(run.name, func(t *testing.T) {
			defer idmap.SetEngineHooks(on)()
			dir := t.TempDir()
			dsn := "file:" + filepath.Join(dir, "model.db") + "?_journal_mode=WAL&_busy_timeout=20000&_txlock=immediate&_foreign_keys=1"
			var opts []idmap.Option
			if run.exact {
				opts = append(opts, idmap.ExactExpiry())
			}
			db, err := idmap.Open(base, dsn, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			snap, err := idmap.Open(base, "file:"+filepath.Join(dir, "model.db")+"?_journal_mode=WAL&_busy_timeout=20000&_foreign_keys=1", append(opts, idmap.Name(idmap.NameOf(db)))...)
			if err != nil {
				t.Fatal(err)
			}
			defer snap.Close()
			truth, err := sql.Open("sqlite3", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer truth.Close()
			var keep []*Item // what the last extra write loaded (guarded by the model's writer lock)
			extra := func(r *rand.Rand, ctx context.Context) error {
				id := 1 + r.IntN(18)
				// Read every row first, as an application that reads
				// before it writes: whatever the engine changes besides
				// the rows the statement names is in the map.
				rs, err := db.QueryContext(ctx, "SELECT id, grp, val FROM items")
				if err != nil {
					return err
				}
				if err := idmap.Bind(rs, &keep); err != nil {
					return err
				}
				switch r.IntN(5) {
				case 0: // a plain UPDATE that may REPLACE another row
					_, err := db.ExecContext(ctx, "UPDATE items SET slot = ? WHERE id = ?", r.IntN(6), id)
					return err
				case 1: // a plain INSERT that may REPLACE another row
					_, err := db.ExecContext(ctx, "INSERT INTO items (id, grp, val, slot) VALUES (?, ?, ?, ?)", id, r.IntN(4), r.IntN(1000), r.IntN(6))
					if err != nil && strings.Contains(err.Error(), "UNIQUE") {
						return nil // the id exists: nothing written
					}
					return err
				case 2: // groups renumbered: ON UPDATE CASCADE rewrites items.grp
					a, b := r.IntN(4), r.IntN(4)
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					for _, q := range [][2]int{{a, 100}, {b, a}, {100, b}} {
						if a == b {
							break
						}
						if _, err := tx.ExecContext(ctx, "UPDATE grps SET id = ? WHERE id = ?", q[1], q[0]); err != nil {
							tx.Rollback()
							return err
						}
					}
					return tx.Commit()
				case 3: // a value that fires the TEMP trigger
					_, err := db.ExecContext(ctx, "UPDATE items SET val = ? WHERE id = ?", 5*r.IntN(200), id)
					return err
				default: // a failing string of statements: the first one commits
					_, err := db.ExecContext(ctx, "UPDATE items SET val = ? WHERE id = ?; INSERT INTO items (id, grp, val) VALUES (?, 0, 0)", r.IntN(1000), id, 1+r.IntN(16))
					if err != nil && strings.Contains(err.Error(), "UNIQUE") {
						return nil // expected: the row exists
					}
					return err
				}
			}
			runModel(t, modelDBs{db: db, snap: snap, truth: truth, q: func(s string) string { return s },
				insertIgnore: "INSERT OR IGNORE INTO items (id, grp, val) VALUES (?, ?, ?)",
				schema:       []string{"SELECT 1"}, extra: extra, expectViolations: !on}, workers, steps)
		})
	}
}

// TestSQLiteHooksReflectionPath runs the tests that read a row's values
// (a key that is not the rowid) with the preupdate callback made by
// reflect.MakeFunc, the path for a driver whose data type idmap does not
// know the layout of.
func TestSQLiteHooksReflectionPath(t *testing.T) {
	defer idmap.SetPreupdateFastPath(false)()
	t.Run("WithoutRowid", TestSQLiteHooksWithoutRowid)
	t.Run("ConflictReplace", TestSQLiteHooksConflictReplaceInDefinition)
	t.Run("Upsert", TestSQLiteHooksUpsert)
}

// TestSQLiteHooksVirtualTable: no hook reports a virtual table's rows, so
// on a database that has one, ExactExpiry keeps the statement reader's
// widening.
func TestSQLiteHooksVirtualTable(t *testing.T) {
	forEachHookDriver(t, func(t *testing.T, d hookDriver, db *sql.DB, ctx context.Context) {
		mustExec(t, db, "CREATE TABLE hk_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
		var err error
		for _, module := range []string{"fts4(body)", "fts5(body)", "rtree(id, x0, x1)"} {
			if _, err = db.ExecContext(ctx, "CREATE VIRTUAL TABLE hk_docs USING "+module); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, db, "INSERT INTO hk_users VALUES (1, 'ann'), (2, 'bob')")
		load[hkUser](t, ctx, db, 1, 2)
		mustExec(t, db, "UPDATE hk_users SET name = 'ann!' WHERE name = ?", "ann")
		fresh(t, ctx, db, &hkUser{1, "ann!"}, 1)
		if idmap.Cached[hkUser](ctx, db, 2) != nil {
			t.Errorf("Cached 2 is served: with a virtual table in the database, an UPDATE by a condition expires its table")
		}
	})
}

// TestSQLiteHooksFailedStatement: a statement that fails may have changed
// rows that SQLite keeps (an earlier statement of a multi-statement string,
// the rows before the failing one under OR FAIL). The statement reader sees
// only the error; the hooks' reports are applied all the same.
func TestSQLiteHooksFailedStatement(t *testing.T) {
	forEachHookDriver(t, func(t *testing.T, d hookDriver, db *sql.DB, ctx context.Context) {
		mustExec(t, db, "CREATE TABLE hk_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
		mustExec(t, db, "INSERT INTO hk_users VALUES (1, 'ann'), (2, 'bob'), (3, 'cid')")
		load[hkUser](t, ctx, db, 1, 2, 3)
		if _, err := db.ExecContext(ctx, "UPDATE hk_users SET name = 'ann!' WHERE id = 1; INSERT INTO hk_users VALUES (2, 'dup')"); err == nil {
			t.Fatal("the second statement did not fail")
		}
		fresh(t, ctx, db, &hkUser{1, "ann!"}, 1)
		// OR FAIL keeps the rows changed before the one that fails.
		if _, err := db.ExecContext(ctx, "UPDATE OR FAIL hk_users SET name = 'same' WHERE id IN (2, 3)"); err == nil {
			t.Fatal("UPDATE OR FAIL did not fail")
		}
		var name2, name3 string
		if err := db.QueryRowContext(context.Background(), "SELECT (SELECT name FROM hk_users WHERE id = 2), (SELECT name FROM hk_users WHERE id = 3)").Scan(&name2, &name3); err != nil {
			t.Fatal(err)
		}
		if name2 != "same" && name3 != "same" {
			t.Fatalf("UPDATE OR FAIL kept no row (%q, %q)", name2, name3)
		}
		fresh(t, ctx, db, &hkUser{2, name2}, 2)
		fresh(t, ctx, db, &hkUser{3, name3}, 3)
	})
}

// TestSQLiteHooksMainTrigger: a trigger in the main schema, which the
// statement reader knows (the write widens to the whole database); with
// ExactExpiry and the preupdate hook, only the rows it wrote expire.
func TestSQLiteHooksMainTrigger(t *testing.T) {
	forEachHookDriver(t, func(t *testing.T, d hookDriver, db *sql.DB, ctx context.Context) {
		mustExec(t, db, "CREATE TABLE hk_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
		mustExec(t, db, "CREATE TABLE hk_orders (id INTEGER PRIMARY KEY, uid INTEGER NOT NULL)")
		mustExec(t, db, "CREATE TABLE hk_codes (code TEXT PRIMARY KEY, label TEXT NOT NULL) WITHOUT ROWID")
		mustExec(t, db, "INSERT INTO hk_users VALUES (1, 'ann'), (2, 'bob')")
		mustExec(t, db, "INSERT INTO hk_codes VALUES ('A', 'a')")
		mustExec(t, db, `CREATE TRIGGER hk_ordered AFTER INSERT ON hk_orders
			BEGIN UPDATE hk_users SET name = 'ordered' WHERE id = new.uid; END`)
		load[hkUser](t, ctx, db, 1, 2)
		load[hkCode](t, ctx, db, "A")
		mustExec(t, db, "INSERT INTO hk_orders (id, uid) VALUES (10, ?)", 1)
		fresh(t, ctx, db, &hkUser{1, "ordered"}, 1)
		kept[hkUser](t, d, ctx, db, 2)
		kept[hkCode](t, d, ctx, db, "A")
	})
}

// TestSQLiteHooksReturningBehindOtherRows: in a transaction, an UPDATE …
// RETURNING whose rows are opened but not yet read (SQLite runs it at the
// first Next) while another query's rows open and close: the rows it then
// changes are reported and expire, also with ExactExpiry, where nothing
// but the hooks expires them.
func TestSQLiteHooksReturningBehindOtherRows(t *testing.T) {
	forEachHookDriver(t, func(t *testing.T, d hookDriver, db *sql.DB, ctx context.Context) {
		mustExec(t, db, "CREATE TABLE hk_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
		mustExec(t, db, "INSERT INTO hk_users VALUES (1, 'ann'), (2, 'bob'), (3, 'cid')")
		load[hkUser](t, ctx, db, 1, 2, 3)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		ret, err := tx.QueryContext(ctx, "UPDATE hk_users SET name = upper(name) WHERE name < 'c' RETURNING id")
		if err != nil {
			t.Fatal(err)
		}
		other, err := tx.QueryContext(ctx, "SELECT id FROM hk_users WHERE id = 3")
		if err != nil {
			t.Fatal(err)
		}
		if err := other.Close(); err != nil {
			t.Fatal(err)
		}
		for ret.Next() {
		}
		if err := ret.Close(); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		fresh(t, ctx, db, &hkUser{1, "ANN"}, 1)
		fresh(t, ctx, db, &hkUser{2, "BOB"}, 2)
		kept[hkUser](t, d, ctx, db, 3)
	})
}

// TestSQLiteHooksReturningPublishesOnce: a write through the query path
// outside a transaction (… RETURNING) publishes its invalidation once, when
// its rows close, with what the statement reader inferred and what the
// engine reported in one message; so does the same write through Exec.
// mattn and modernc run the statement in QueryContext, before idmap's
// interceptor returns; on a driver that runs it at the first Next (the
// Lazy drivers), the rows published the reader's part when they closed and
// the hooks' part again after (two messages for one write) before the
// hooks' reports joined the statement's effects.
func TestSQLiteHooksReturningPublishesOnce(t *testing.T) {
	for _, d := range hookDrivers() {
		for _, exact := range []bool{false, true} {
			name := d.name
			if exact {
				name += "/exact"
			}
			t.Run(name, func(t *testing.T) {
				l := bus.NewLoopback()
				defer l.Close()
				opts := []idmap.Option{idmap.Name(fmt.Sprintf("hk-returning-once-%d", dbSeq.Add(1))), idmap.WithBus(l)}
				if exact {
					opts = append(opts, idmap.ExactExpiry())
				}
				db := d.open(t, opts...)
				defer db.Close()
				db.SetMaxOpenConns(1)
				ctx := context.Background()
				rec := record(t, l)
				mustExec(t, db, "CREATE TABLE hk_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
				mustExec(t, db, "INSERT INTO hk_users VALUES (1, 'ann'), (2, 'bob'), (3, 'cid')")
				load[hkUser](t, ctx, db, 1, 2, 3) // the hooks key the tables of mapped types
				rec.take(l)
				st0, _ := idmap.StatsOf(db)
				for i, q := range []string{
					"UPDATE hk_users SET name = name || 'x' WHERE id = 1 RETURNING id",
					"UPDATE hk_users SET name = name || 'x' WHERE name < 'c' RETURNING id, name",
					"INSERT INTO hk_users (id, name) VALUES (7, 'gil') RETURNING id",
					"DELETE FROM hk_users WHERE id = 7 RETURNING id",
					"UPDATE hk_users SET name = name || 'x' WHERE id = 2 RETURNING id;",
					"SELECT 1; UPDATE hk_users SET name = name || 'x' WHERE id = 2 RETURNING id",
					"UPDATE hk_users SET name = name || 'x' WHERE id = 2 RETURNING id; SELECT 1",
					"WITH a AS (SELECT 2 AS id) UPDATE hk_users SET name = name || 'x' WHERE id IN (SELECT id FROM a) RETURNING id",
				} {
					rs, err := db.QueryContext(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					for rs.Next() {
					}
					if err := rs.Close(); err != nil {
						t.Fatal(err)
					}
					if got := rec.take(l); len(got) != 1 || !strings.HasPrefix(got[0], "hk_users:") {
						t.Errorf("query %d (%s): published %q; want one message for hk_users", i, q, got)
					}
					mustExec(t, db, strings.ReplaceAll(q, "7", "8"))
					if got := rec.take(l); len(got) != 1 || !strings.HasPrefix(got[0], "hk_users:") {
						t.Errorf("exec %d (%s): published %q; want one message for hk_users", i, q, got)
					}
				}
				st, _ := idmap.StatsOf(db)
				if n := st.Bus.Published - st0.Bus.Published; n != 16 {
					t.Errorf("Stats.Bus.Published grew by %d; want 16 (one per write)", n)
				}
			})
		}
	}
}

// TestSQLiteHooksWritesHeldByOpenReturning: outside a transaction, SQLite
// commits a write with RETURNING only when its rows are done, and every
// write the connection makes meanwhile joins that implicit transaction. An
// UPDATE sent with Exec while such rows are open is therefore not yet
// committed when its Exec returns: another connection that loads the row
// then reads the old values, and idmap must expire the key again when the
// open write's rows close and the whole commits. (A write while only a
// SELECT's rows are open commits at once.) What the engine reports of the
// open write itself stays with it when other rows close first.
func TestSQLiteHooksWritesHeldByOpenReturning(t *testing.T) {
	forEachHookDriver(t, func(t *testing.T, d hookDriver, db *sql.DB, _ context.Context) {
		db.SetMaxOpenConns(2)
		ctx := context.Background() // the shared map, which both connections serve
		mustExec(t, db, "CREATE TABLE hk_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
		mustExec(t, db, "INSERT INTO hk_users VALUES (1, 'ann'), (2, 'bob')")
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ret, err := c.QueryContext(ctx, "UPDATE hk_users SET name = 'ANN' WHERE id = 1 RETURNING id")
		if err != nil {
			t.Fatal(err)
		}
		if !ret.Next() {
			t.Fatal("no row returned")
		}
		// Other rows closing on the connection: what the engine reported
		// of the open write (at its first Next on the Lazy drivers) stays
		// with it.
		sel, err := c.QueryContext(ctx, "SELECT id FROM hk_users WHERE id = 2")
		if err != nil {
			t.Fatal(err)
		}
		if err := sel.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := idmap.Get[hkUser](ctx, db, 1); err != nil { // 'ann': not committed yet
			t.Fatal(err)
		}
		if _, err := c.ExecContext(ctx, "UPDATE hk_users SET name = 'BOB' WHERE id = 2"); err != nil {
			t.Fatal(err)
		}
		// The other connection reads the committed row: 'bob', loaded into
		// the shared map after the Exec's expiry.
		held, err := idmap.Get[hkUser](ctx, db, 2)
		if err != nil {
			t.Fatal(err)
		}
		if held.Name != "bob" {
			t.Skipf("%s committed the Exec while the RETURNING rows were open (read %q)", d.name, held.Name)
		}
		for ret.Next() {
		}
		if err := ret.Close(); err != nil {
			t.Fatal(err)
		}
		fresh(t, ctx, db, &hkUser{1, "ANN"}, 1)
		fresh(t, ctx, db, &hkUser{2, "BOB"}, 2)
	})
}
