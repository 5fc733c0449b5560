package idmap_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"expvar"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/idmapexpvar"
)

func TestStats(t *testing.T) {
	db, _ := openCounted(t, idmap.Name("stats-"+t.Name()))
	seedUsers(t, db, 3)
	ctx := context.Background()
	before, ok := idmap.StatsOf(db)
	require.True(t, ok)

	queryUsers(t, ctx, db, "SELECT id, name, email FROM users") // 3 misses
	queryUsers(t, ctx, db, "SELECT id, name, email FROM users") // 3 hits
	_, err := idmap.Get[User](ctx, db, 1)                       // 1 hit
	require.NoError(t, err)
	_, err = idmap.Get[User](ctx, db, 99) // no row: a miss
	require.ErrorIs(t, err, sql.ErrNoRows)
	mustExec(t, db, "UPDATE users SET name = 'n' WHERE id = 2") // 1 key
	_, err = idmap.Get[User](ctx, db, 2)                        // a refresh
	require.NoError(t, err)
	sctx := idmap.NewContext(ctx)
	queryUsers(t, sctx, db, "SELECT id, name, email FROM users WHERE id < 3") // 2 scope misses
	_, err = idmap.Get[User](sctx, db, 1)                                     // 1 scope hit
	require.NoError(t, err)
	mid, _ := idmap.StatsOf(db)
	require.Equal(t, int64(2), mid.Scopes.Entries)
	idmap.Flush(sctx)
	idmap.Flush(ctx, "stats-"+t.Name()) // shared, by name

	after, _ := idmap.StatsOf(db)
	require.Equal(t, uint64(4), after.Shared.Hits-before.Shared.Hits)
	require.Equal(t, uint64(4), after.Shared.Misses-before.Shared.Misses)
	require.Equal(t, uint64(1), after.Shared.Refreshes-before.Shared.Refreshes)
	require.Equal(t, uint64(1), after.Scopes.Hits-before.Scopes.Hits)
	require.Equal(t, uint64(2), after.Scopes.Misses-before.Scopes.Misses)
	require.Equal(t, uint64(1), after.Expiries.Keys-before.Expiries.Keys)
	require.Equal(t, uint64(2), after.Flushes["manual"]-before.Flushes["manual"])
	require.Equal(t, int64(0), after.Scopes.Entries)
	require.Equal(t, int64(0), after.Shared.Entries)

	// The same figures through the handler and expvar.
	rec := httptest.NewRecorder()
	idmap.StatsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/idmap", nil))
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var all []idmap.Stats
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &all))
	found := false
	for _, s := range all {
		if s.DB == after.DB {
			found = true
			require.Equal(t, after.Shared.Hits, s.Shared.Hits)
		}
	}
	require.True(t, found, "the handler lists the database")
	require.NoError(t, idmapexpvar.Publish(""))
	require.NoError(t, idmapexpvar.Publish("idmap"), "publishing again is a no-op")
	require.Contains(t, expvar.Get("idmap").String(), `"db":"`+after.DB+`"`)

	_, ok = idmap.StatsOf(nil)
	require.False(t, ok)
}

// A DSN's password appears in no statistic, log record or name.
func TestStatsAndLogsHoldNoPassword(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const secret = "s3cr3t-pw"
	db, err := idmap.Open("mysql", "app:"+secret+"@tcp(127.0.0.1:1)/appdb?timeout=50ms", idmap.Logger(logger))
	require.NoError(t, err)
	defer db.Close()
	_, _ = db.Exec("UPDATE users SET name = 'x' WHERE id = 1") // fails to connect: nothing to expire
	idmap.Flush(context.Background())
	rec := httptest.NewRecorder()
	idmap.StatsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	require.NotContains(t, rec.Body.String(), secret)
	require.NoError(t, idmapexpvar.Publish(""))
	require.NotContains(t, expvar.Get("idmap").String(), secret)
	require.NotContains(t, buf.String(), secret)
	require.NotContains(t, idmap.NameOf(db), secret)
	require.Contains(t, buf.String(), "idmap: flush", "the logger got the flush")
}

func TestLoggerRecordsInvalidations(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db, _ := openCounted(t, idmap.Name("logged-"+t.Name()), idmap.Logger(logger))
	seedUsers(t, db, 2)
	buf.Reset()
	mustExec(t, db, "UPDATE users SET name = 'x' WHERE id = 1")
	mustExec(t, db, "DELETE FROM users WHERE name = 'zz'")
	out := buf.String()
	require.Contains(t, out, `msg="idmap: write expires keys" db=logged-TestLoggerRecordsInvalidations table=users keys=1`)
	require.Contains(t, out, `msg="idmap: write expires a table" db=logged-TestLoggerRecordsInvalidations table=users`)
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		opt  idmap.Option
		want string
	}{
		{idmap.MaxAge(0), "idmap: MaxAge: 0s is not a positive duration"},
		{idmap.MaxAge(-time.Second), "idmap: MaxAge: -1s is not a positive duration"},
		{idmap.MaxStrongEntries(0), "idmap: MaxStrongEntries: 0 is not a positive bound"},
	} {
		_, err := idmap.Open("sqlite3", "file::memory:", tc.opt)
		require.EqualError(t, err, tc.want)
	}
}

// MaxAge and MaxStrongEntries through Open: an entry older than the age is
// loaded again; strong entries past the bound are dropped.
// StrongUser is User held strongly by the shared map.
type StrongUser struct {
	ID    int64  `db:"id"`
	Name  string `db:"name"`
	Email string `db:"email"`
}

func init() { idmap.Model[StrongUser](idmap.Table("users"), idmap.StrongRefs()) }

func TestMaxAgeAndStrongBound(t *testing.T) {
	db, c := openCounted(t, idmap.Name("aged-"+t.Name()), idmap.MaxAge(30*time.Millisecond), idmap.MaxStrongEntries(2))
	seedUsers(t, db, 3)
	ctx := context.Background()
	_, err := idmap.Get[StrongUser](ctx, db, 1)
	require.NoError(t, err)
	require.NotNil(t, idmap.Cached[StrongUser](ctx, db, 1))
	deadline := time.Now().Add(10 * time.Second)
	for idmap.Cached[StrongUser](ctx, db, 1) != nil {
		require.False(t, time.Now().After(deadline), "never expired by age")
		time.Sleep(5 * time.Millisecond)
	}
	q0 := c.Queries()
	_, err = idmap.Get[StrongUser](ctx, db, 1)
	require.NoError(t, err)
	require.Equal(t, q0+1, c.Queries())
	for id := 1; id <= 3; id++ {
		_, err = idmap.Get[StrongUser](ctx, db, id)
		require.NoError(t, err)
	}
	st, _ := idmap.StatsOf(db)
	require.LessOrEqual(t, st.Shared.Entries, int64(2))
	require.GreaterOrEqual(t, st.Evicted, uint64(1))
	require.NotZero(t, st.Expiries.Age)
	require.False(t, strings.Contains(st.DB, "@"))
}

// Publish refuses a name that another variable holds, rather than letting
// expvar panic.
func TestExpvarPublishTakenName(t *testing.T) {
	name := "taken-" + t.Name()
	if expvar.Get(name) == nil { // a second run in one process finds it taken already
		expvar.NewInt(name)
	}
	err := idmapexpvar.Publish(name)
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "idmap: "), err.Error())
}

// droppingBus is a Loopback that counts dropped payloads, as pgbus and
// redisbus do (bus.Dropper).
type droppingBus struct {
	*bus.Loopback
	drops bus.DropCounter
}

func (b *droppingBus) Dropped() bus.Drops { return b.drops.Load() }

// TestStatsBusDropped: the drops of a bus that counts them are in the
// statistics of each database that uses it, and of no other.
func TestStatsBusDropped(t *testing.T) {
	b := &droppingBus{Loopback: bus.NewLoopback()}
	defer b.Close()
	db, _, _ := openBus(t, b, 1)
	other, _ := openCounted(t, idmap.Name("stats-dropped-other-"+t.Name()))
	b.drops.Add(bus.ErrTooLarge)
	b.drops.Add(bus.ErrTooLarge)
	b.drops.Add(bus.ErrUnauthenticated)
	b.drops.Add(bus.ErrFormat)
	st, ok := idmap.StatsOf(db)
	require.True(t, ok)
	require.Equal(t, bus.Drops{TooLarge: 2, Unauthenticated: 1, Malformed: 1}, st.Bus.Dropped)
	st, _ = idmap.StatsOf(other)
	require.Equal(t, bus.Drops{}, st.Bus.Dropped)
	js, err := json.Marshal(st)
	require.NoError(t, err)
	require.Contains(t, string(js), `"dropped":{"too_large":0,"unauthenticated":0,"malformed":0}`)
}
