package idmap_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/internal/fakedb"
)

// GetMany keeps each statement under the dialect's placeholder limit.
func TestGetManyChunks(t *testing.T) {
	ctx := idmap.NewContext(context.Background())
	db, count := openCounted(t)
	seedUsers(t, db, 2500)
	keys := make([]any, 2500)
	for i := range keys {
		keys[i] = i + 1
	}
	before := count.Queries()
	got, err := idmap.GetMany[User](ctx, db, keys...)
	require.NoError(t, err)
	require.Equal(t, int64(3), count.Queries()-before, "2,500 keys in chunks of 999")
	for i, u := range got {
		require.NotNil(t, u)
		require.Equal(t, int64(i+1), u.ID)
	}
}

// Concurrent misses of one key load once: the others wait for the first
// query, then take its object if it is fresh for them.
func TestConcurrentMissesLoadOnce(t *testing.T) {
	for _, scoped := range []bool{false, true} {
		ctx := scopedCtx(scoped)
		pause := fakedb.NewPause()
		var queries atomic.Int64
		fd := fakedb.New(func(ctx context.Context, q *fakedb.Query) (*fakedb.Result, error) {
			if q.Kind == fakedb.KindQuery && strings.Contains(q.SQL, "users") {
				queries.Add(1)
				return &fakedb.Result{Columns: []string{"id", "name", "email"}, Rows: [][]driver.Value{{int64(7), "g", ""}}, BeforeRow: pause.AtRow(1)}, nil
			}
			return nil, nil
		})
		db := sql.OpenDB(idmap.NewConnector(fd.Connector(), idmap.Dialect("sqlite")))
		const n = 8
		waiting := make(chan struct{}, n)
		idmap.SetFlightWaitHook(func() { waiting <- struct{}{} })
		got := make(chan *User, n)
		for range n {
			go func() {
				u, err := idmap.Get[User](ctx, db, 7)
				if err != nil {
					t.Error(err)
				}
				got <- u
			}()
		}
		<-pause.Reached() // the first load is under way
		for range n - 1 {
			select {
			case <-waiting: // every other Get waits for it
			case <-time.After(30 * time.Second):
				t.Fatalf("scoped=%v: the other Gets did not wait for the first load", scoped)
			}
		}
		pause.Release()
		first := <-got
		for range n - 1 {
			require.Same(t, first, <-got)
		}
		require.Equal(t, int64(1), queries.Load(), "scoped=%v: concurrent misses of one key sent more than one query", scoped)
		idmap.SetFlightWaitHook(nil)
		db.Close()
	}
}

// A read of mapped tables does not read the catalogue: the first GetMany
// with misses is one query (IN ( is not a call to a function).
func TestGetManyReadsNoCatalogue(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 3)
		mustExec(t, db, "CREATE TABLE rdr_scratch (id INTEGER PRIMARY KEY)") // DDL: the catalogue is forgotten
		before := count.n.Load()
		us, err := idmap.GetMany[User](context.Background(), db, 1, 2, 3)
		require.NoError(t, err)
		require.Len(t, us, 3)
		require.EqualValues(t, 1, count.n.Load()-before, "GetMany with misses: %q", lastQueries(count, before))
		before = count.n.Load()
		_, err = idmap.Get[User](idmap.NewContext(context.Background()), db, 1)
		require.NoError(t, err)
		require.EqualValues(t, 1, count.n.Load()-before, "Get with a miss: %q", lastQueries(count, before))
	})
}

func lastQueries(c *counter, from int64) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if int(from) > len(c.log) {
		return nil
	}
	return append([]string(nil), c.log[from:]...)
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
