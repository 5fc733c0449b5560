package idmap_test

import (
	"bytes"
	"context"
	"database/sql"

	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

// The query's own error comes back as the driver gave it; Bind's errors
// start with "idmap:"; bad input is an error, not a panic.
func TestQueryHelperErrors(t *testing.T) {
	db := openSQLite(t)
	seedUsers(t, db, 2)
	ctx := context.Background()

	_, err := idmap.Query[User](ctx, db, "SELECT id, name FROM no_such_table")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "idmap:", "a driver error is returned as it is")
	require.Contains(t, err.Error(), "no_such_table")
	_, err = idmap.QueryOne[User](ctx, db, "SELEC oops")
	require.Error(t, err)
	require.NotErrorIs(t, err, sql.ErrNoRows)

	_, err = idmap.Query[User](ctx, db, "SELECT id, name, 1 AS extra FROM users")
	require.ErrorIs(t, err, idmap.ErrNoField)
	require.True(t, strings.HasPrefix(err.Error(), "idmap: "), err.Error())

	var nilDB *sql.DB
	_, err = idmap.Query[User](ctx, nilDB, "SELECT 1")
	require.ErrorIs(t, err, idmap.ErrNotIdmap)
	_, err = idmap.QueryOne[User](ctx, nil, "SELECT 1")
	require.ErrorIs(t, err, idmap.ErrNotIdmap)
	//lint:ignore SA1012 a nil context is bad input that must not panic
	us, err := idmap.Query[User](nil, db, "SELECT id, name, email FROM users") //nolint:staticcheck
	require.NoError(t, err)
	require.Len(t, us, 2)
}

// GetByKeys takes a typed slice of keys; GetMany given such a slice as one
// key says what to call instead.
func TestGetByKeys(t *testing.T) {
	db, count := openCounted(t)
	seedUsers(t, db, 5)
	mustExec(t, db, "CREATE TABLE memberships (user_id INTEGER, grp VARCHAR(20), role VARCHAR(20), PRIMARY KEY (user_id, grp))")
	mustExec(t, db, "INSERT INTO memberships VALUES (1, 'a', 'admin'), (1, 'b', 'member'), (2, 'a', 'member')")
	queriers(t, db, func(t *testing.T, ctx context.Context, q idmap.Querier) {
		ids := []int64{3, 1, 99, 3}
		before := count.Queries()
		us, err := idmap.GetByKeys[User](ctx, q, ids)
		require.NoError(t, err)
		require.Equal(t, int64(1), count.Queries()-before, "misses in one query")
		require.Len(t, us, 4)
		require.Equal(t, "user3", us[0].Name)
		require.Equal(t, "user1", us[1].Name)
		require.Nil(t, us[2])
		require.Same(t, us[0], us[3])
		u1, err := idmap.Get[User](ctx, q, 1)
		require.NoError(t, err)
		require.Same(t, us[1], u1)

		byName, err := idmap.GetByKeys[User](ctx, q, []string{"1", "2"}) // converted like Get's keys
		require.NoError(t, err)
		require.Same(t, u1, byName[0])

		none, err := idmap.GetByKeys[User](ctx, q, []int64{})
		require.NoError(t, err)
		require.Empty(t, none)

		ms, err := idmap.GetByKeys[Membership](ctx, q, [][]any{{1, "b"}, {2, "a"}, {3, "a"}})
		require.NoError(t, err)
		require.Equal(t, "member", ms[0].Role)
		require.Equal(t, int64(2), ms[1].UserID)
		require.Nil(t, ms[2])
		type pair [2]any
		ms2, err := idmap.GetByKeys[Membership](ctx, q, []pair{{1, "b"}})
		require.NoError(t, err)
		require.Same(t, ms[0], ms2[0])

		_, err = idmap.GetMany[User](ctx, q, ids)
		require.ErrorIs(t, err, idmap.ErrKey)
		require.Contains(t, err.Error(), "idmap: GetMany: key 0 of idmap_test.User is a []int64")
		require.Contains(t, err.Error(), "call idmap.GetByKeys[idmap_test.User](ctx, q, keys)")
		_, err = idmap.GetMany[Membership](ctx, q, [][]any{{1, "b"}})
		require.ErrorIs(t, err, idmap.ErrKey)
		require.Contains(t, err.Error(), "GetByKeys")
		_, err = idmap.GetByKeys[User](ctx, q, [][]int64{ids})
		require.ErrorIs(t, err, idmap.ErrKey)
		require.Contains(t, err.Error(), "idmap: GetByKeys: key 0 of idmap_test.User is a []int64; each element of keys is one key")
		_, err = idmap.GetByKeys[Membership](ctx, q, []int64{1})
		require.ErrorIs(t, err, idmap.ErrKey)
		require.Contains(t, err.Error(), "idmap: GetByKeys: key 0 of idmap_test.Membership")
	})
}

// Cached and Intern take any Querier: a *sql.Tx or *sql.Conn uses its own
// map as Get does.
func TestCachedAndInternTakeAQuerier(t *testing.T) {
	db, count := openCounted(t)
	seedUsers(t, db, 3)
	ctx := context.Background()
	queriers(t, db, func(t *testing.T, ctx context.Context, q idmap.Querier) {
		idmap.Flush(ctx)
		require.Nil(t, idmap.Cached[User](ctx, q, 1))
		u1, err := idmap.Get[User](ctx, q, 1)
		require.NoError(t, err)
		before := count.Queries()
		require.Same(t, u1, idmap.Cached[User](ctx, q, 1))
		require.Same(t, u1, idmap.Cached[User](ctx, q, "1"))
		require.Zero(t, count.Queries()-before, "Cached sends nothing to the server")
		require.Nil(t, idmap.Cached[User](ctx, q, 2))
		require.Nil(t, idmap.Cached[User](ctx, q, 1, 2), "a bad key is nil")

		decoded := []*User{{ID: 1, Name: "stale"}, {ID: 2, Name: "user2", Email: "u2@example.com"}}
		require.NoError(t, idmap.Intern(ctx, q, decoded))
		require.Same(t, u1, decoded[0], "the canonical object replaces the decoded one")
		require.Same(t, decoded[1], idmap.Cached[User](ctx, q, 2), "a new object becomes canonical")
		before = count.Queries()
		u2, err := idmap.Get[User](ctx, q, 2)
		require.NoError(t, err)
		require.Same(t, decoded[1], u2)
		require.Zero(t, count.Queries()-before)
	})

	// What a transaction interns stays in its own map.
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	objs := []*User{{ID: 3, Name: "user3"}}
	require.NoError(t, idmap.Intern(ctx, tx, objs))
	require.Same(t, objs[0], idmap.Cached[User](ctx, tx, 3))
	require.NotSame(t, objs[0], idmap.Cached[User](ctx, db, 3))
	require.NoError(t, tx.Rollback())
	require.Nil(t, idmap.Cached[User](ctx, tx, 3), "a finished transaction: nil")
	require.ErrorIs(t, idmap.Intern(ctx, tx, objs), sql.ErrTxDone)

	var nilTx *sql.Tx
	require.Nil(t, idmap.Cached[User](ctx, nilTx, 1))
	require.Nil(t, idmap.Cached[User](ctx, nil, 1))
	require.ErrorIs(t, idmap.Intern(ctx, nilTx, objs), idmap.ErrNotIdmap)
	plain, err := sql.Open("sqlite3", ":memory:")
	require.NoError(t, err)
	defer plain.Close()
	require.Nil(t, idmap.Cached[User](ctx, plain, 1))
	require.ErrorIs(t, idmap.Intern(ctx, plain, objs), idmap.ErrNotIdmap)
	ptx, err := plain.Begin()
	require.NoError(t, err)
	defer ptx.Rollback()
	require.Nil(t, idmap.Cached[User](ctx, ptx, 1))
	require.ErrorIs(t, idmap.Intern(ctx, ptx, objs), idmap.ErrNotIdmap)
}

// Blob has column fields that hold memory.
type Blob struct {
	ID    int64          `db:"id"`
	Data  []byte         `db:"data"`
	Nick  *string        `db:"nick"`
	Tags  map[string]int `db:"tags"`
	Note  string         `db:"-"`
	Cache []int          `db:"-"`
}

func (Blob) TableName() string { return "blobs" }

func TestCopy(t *testing.T) {
	nick := "n"
	b := &Blob{ID: 1, Data: []byte("abc"), Nick: &nick, Tags: map[string]int{"a": 1}, Note: "tmp", Cache: []int{1}}
	c := idmap.Copy(b)
	require.NotSame(t, b, c)
	require.Equal(t, *b, *c)
	c.Data[0] = 'X'
	*c.Nick = "changed"
	c.Tags["a"] = 2
	require.Equal(t, "abc", string(b.Data), "a []byte column is copied")
	require.Equal(t, "n", *b.Nick, "a pointer column points to a copy")
	require.Equal(t, 1, b.Tags["a"], "a map column is copied")
	c.Cache[0] = 9
	require.Equal(t, 9, b.Cache[0], "a temporary field is copied as an assignment copies it")

	require.Nil(t, idmap.Copy[Blob](nil))
	n := int64(5)
	require.Equal(t, int64(5), *idmap.Copy(&n))
	type plain struct{ B []byte }
	p := &plain{B: []byte("x")}
	pc := idmap.Copy(p)
	pc.B[0] = 'y'
	require.Equal(t, "x", string(p.B), "a type that is not mapped")
}

// The pattern of the README's "Changing a row": a copy of a shared object
// is changed and written back in a transaction while other goroutines read
// the row through Get. Until the commit they see the old object, unchanged;
// after it, a new object with the new value. Run with -race.
func TestCopyWriteBack(t *testing.T) {
	db := openSQLite(t)
	seedUsers(t, db, 2)
	ctx := context.Background()
	u, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	u.Visits = 4 // before other goroutines share u

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seen sync.Map // names read through Get
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				g, err := idmap.Get[User](ctx, db, 1)
				if err != nil {
					t.Error(err)
					return
				}
				seen.Store(g.Name+"|"+g.Email, true) // reads every column field
			}
		})
	}

	c := idmap.Copy(u)
	c.Name = "bea"
	c.Visits = 7
	g, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Same(t, u, g, "an unwritten copy changes nothing")
	require.Equal(t, "user1", g.Name)

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "UPDATE users SET name = ? WHERE id = ?", c.Name, c.ID)
	require.NoError(t, err)
	g, err = idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Equal(t, "user1", g.Name, "not seen by the shared map before the commit")
	require.NoError(t, tx.Commit())

	g, err = idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Equal(t, "bea", g.Name, "seen after the commit")
	require.NotSame(t, u, g, "a new object in the shared map")
	require.Equal(t, "user1", u.Name, "the object handed out is never written to")
	require.Equal(t, 4, g.Visits, "the new object takes the old one's temporary fields")
	close(stop)
	wg.Wait()
	seen.Range(func(k, _ any) bool {
		require.Contains(t, []string{"user1|u1@example.com", "bea|u1@example.com"}, k)
		return true
	})
}

// The same change in a scope: the scope's object is the unit of work's own,
// changed in place and refreshed from the row once written.
func TestChangeInScope(t *testing.T) {
	db := openSQLite(t)
	seedUsers(t, db, 2)
	shared, err := idmap.Get[User](context.Background(), db, 1)
	require.NoError(t, err)
	ctx := idmap.NewContext(context.Background())
	u, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.NotSame(t, shared, u)
	u.Name = "bea"
	u.Visits = 2
	_, err = db.ExecContext(ctx, "UPDATE users SET name = ? WHERE id = ?", u.Name, u.ID)
	require.NoError(t, err)
	again, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Same(t, u, again)
	require.Equal(t, "bea", again.Name)
	require.Equal(t, 2, again.Visits)
	require.Equal(t, "user1", shared.Name)
	s2, err := idmap.Get[User](context.Background(), db, 1)
	require.NoError(t, err)
	require.Equal(t, "bea", s2.Name)

	// A write that fails leaves the change in the scope, until a reload
	// with WithRefresh.
	u.Name = "dup"
	_, err = db.ExecContext(ctx, "UPDATE users SET name = ?, id = 2 WHERE id = ?", u.Name, u.ID) // id 2 exists
	require.Error(t, err)
	stale, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Equal(t, "dup", stale.Name, "the unwritten change is seen in its scope")
	fresh, err := idmap.Get[User](idmap.WithRefresh(ctx), db, 1)
	require.NoError(t, err)
	require.Same(t, u, fresh)
	require.Equal(t, "bea", fresh.Name, "WithRefresh reloads it in place")
	require.Equal(t, 2, fresh.Visits)

	// In a transaction that rolls back, the change is undone at the next load.
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	tu, err := idmap.QueryOne[User](ctx, tx, "SELECT id, name, email FROM users WHERE id = ?", 1)
	require.NoError(t, err)
	tu.Name = "cy"
	_, err = tx.ExecContext(ctx, "UPDATE users SET name = ? WHERE id = ?", tu.Name, tu.ID)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	back, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Equal(t, "bea", back.Name)
}

// A database whose queries have run in scopes logs, at level Debug, rows
// bound outside one.
func TestUnscopedBindLogged(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db, _ := openCounted(t, idmap.Name("unscoped-"+t.Name()), idmap.Logger(logger))
	seedUsers(t, db, 2)
	read := func() string { mu.Lock(); defer mu.Unlock(); return buf.String() }
	const msg = `msg="idmap: rows bound outside a scope"`

	queryUsers(t, context.Background(), db, "SELECT id, name, email FROM users")
	require.NotContains(t, read(), msg, "no scope seen yet: nothing logged")

	ctx := idmap.NewContext(context.Background())
	queryUsers(t, ctx, db, "SELECT id, name, email FROM users")
	require.NotContains(t, read(), msg, "a scoped query is not logged")
	tx, err := db.BeginTx(context.Background(), nil)
	require.NoError(t, err)
	queryUsers(t, context.Background(), tx, "SELECT id, name, email FROM users")
	require.NoError(t, tx.Rollback())
	require.NotContains(t, read(), msg, "a transaction's own scope is a scope")

	queryUsers(t, context.Background(), db, "SELECT id, name, email FROM users")
	require.Contains(t, read(), msg+" db=unscoped-TestUnscopedBindLogged type=idmap_test.User table=users")
}
