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

// Membership has a composite key.
type Membership struct {
	UserID int64  `db:"user_id,pk"`
	Group  string `db:"grp,pk"`
	Role   string
}

func (Membership) TableName() string { return "memberships" }

func TestContractGetMany(t *testing.T) {
	forEachDriver(t, func(t *testing.T, d *testDriver, db *sql.DB, count *counter) {
		d.seed(t, db, 5)
		mustExec(t, db, "CREATE TABLE memberships (user_id INTEGER, grp VARCHAR(20), role VARCHAR(20), PRIMARY KEY (user_id, grp))")
		mustExec(t, db, "INSERT INTO memberships VALUES (1, 'a', 'admin'), (1, 'b', 'member'), (2, 'a', 'member')")
		queriers(t, db, func(t *testing.T, ctx context.Context, q idmap.Querier) {
			u2, err := idmap.Get[User](ctx, q, 2)
			require.NoError(t, err)
			before := count.Queries()
			got, err := idmap.GetMany[User](ctx, q, 3, 2, 99, "1", 3)
			require.NoError(t, err)
			require.Equal(t, int64(1), count.Queries()-before, "misses load in one query")
			require.Len(t, got, 5)
			require.Same(t, u2, got[1], "a hit is the canonical object")
			require.Nil(t, got[2], "an absent row is nil")
			require.Equal(t, "user3", got[0].Name)
			require.Equal(t, "user1", got[3].Name)
			require.Same(t, got[0], got[4], "one key twice, one object")

			before = count.Queries()
			again, err := idmap.GetMany[User](ctx, q, 1, 2, 3)
			require.NoError(t, err)
			require.Zero(t, count.Queries()-before, "all hits: no query")
			require.Same(t, got[3], again[0])

			ms, err := idmap.GetMany[Membership](ctx, q, []any{1, "b"}, []any{2, "a"}, []any{3, "a"})
			require.NoError(t, err)
			require.Equal(t, "member", ms[0].Role)
			require.Equal(t, int64(2), ms[1].UserID)
			require.Nil(t, ms[2])
			m1, err := idmap.Get[Membership](ctx, q, 1, "b")
			require.NoError(t, err)
			require.Same(t, ms[0], m1)

			_, err = idmap.GetMany[Membership](ctx, q, 1)
			require.ErrorIs(t, err, idmap.ErrKey)
			empty, err := idmap.GetMany[User](ctx, q)
			require.NoError(t, err)
			require.Empty(t, empty)
		})
	})
}

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
		ctx := context.Background()
		if scoped {
			ctx = idmap.NewContext(ctx)
		}
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
