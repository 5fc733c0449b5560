package idmap_test

import (
	"context"

	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
)

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
