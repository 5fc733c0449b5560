package idmap_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
)

// openBus opens a new SQLite file through idmap with a bus, under a name of
// its own, and seeds n users.
func openBus(t *testing.T, b bus.Bus, n int, opts ...idmap.Option) (*sql.DB, *counter, string) {
	t.Helper()
	name := fmt.Sprintf("bus-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), dbSeq.Add(1))
	db, c := openCounted(t, append([]idmap.Option{idmap.Name(name), idmap.WithBus(b)}, opts...)...)
	seedUsers(t, db, n)
	return db, c, name
}

// recorder subscribes to a Loopback and keeps what the instance published.
type recorder struct {
	mu   sync.Mutex
	msgs []bus.Message
}

func record(t *testing.T, l *bus.Loopback) *recorder {
	r := &recorder{}
	require.NoError(t, l.Subscribe(bus.Handler{Message: func(m bus.Message) {
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
	}}))
	return r
}

// take returns and forgets what was recorded, as "table:keys" strings.
func (r *recorder) take(l *bus.Loopback) []string {
	l.Sync()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		out = append(out, fmt.Sprintf("%s:%v", m.Table, m.Keys))
	}
	r.msgs = nil
	return out
}

func TestBusPublishesCommittedWrites(t *testing.T) {
	l := bus.NewLoopback()
	defer l.Close()
	db, _, name := openBus(t, l, 3)
	rec := record(t, l)
	rec.take(l)
	ctx := context.Background()

	mustExec(t, db, "UPDATE users SET name = 'x' WHERE id = 2")
	require.Equal(t, []string{"users:[2]"}, rec.take(l), "autocommit write: one message, after it")

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	mustExec(t, tx, "UPDATE users SET name = 'y' WHERE id = 1")
	mustExec(t, tx, "UPDATE users SET name = 'y' WHERE id IN (3, 1)")
	mustExec(t, tx, "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)")
	require.Empty(t, rec.take(l), "nothing is published before the commit")
	require.NoError(t, tx.Commit())
	require.Equal(t, []string{"notes:[]", "users:[1 3]"}, rec.take(l), "one message per table per transaction")

	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	mustExec(t, tx, "UPDATE users SET name = 'z' WHERE id = 1")
	require.NoError(t, tx.Rollback())
	require.Empty(t, rec.take(l), "a rollback publishes nothing")

	mustExec(t, db, "UPDATE users SET name = 'w' WHERE name LIKE 'u%'")
	require.Equal(t, []string{"users:[]"}, rec.take(l), "keys unknown: the table")

	mustExec(t, db, "INSERT INTO users (id, name) VALUES (10, 'a') RETURNING id") // exec of a RETURNING statement
	rows, err := db.QueryContext(ctx, "INSERT INTO users (id, name) VALUES (11, 'b') RETURNING id")
	require.NoError(t, err)
	require.Empty(t, rec.take(l)[1:], "the query path publishes when its rows close")
	rows.Close()
	require.Equal(t, []string{"users:[11]"}, rec.take(l))

	for _, m := range l.Sent() {
		require.Equal(t, idmap.InstanceID(), m.Origin)
		require.Equal(t, name, m.DB)
	}
	sent := l.Sent()
	for i := 1; i < len(sent); i++ {
		require.Greater(t, sent[i].Seq, sent[i-1].Seq)
	}
	st, ok := idmap.StatsOf(db)
	require.True(t, ok)
	require.Equal(t, uint64(len(sent)), st.Bus.Published)
	require.True(t, st.Bus.Listening)
}

func TestBusRemoteMessagesExpire(t *testing.T) {
	l := bus.NewLoopback()
	defer l.Close()
	db, c, name := openBus(t, l, 3)
	ctx := context.Background()
	l.Sync()         // listening
	var held []*User // the shared map holds its objects weakly: keep them
	defer runtime.KeepAlive(&held)
	load := func() {
		for id := 1; id <= 3; id++ {
			u, err := idmap.Get[User](ctx, db, id)
			require.NoError(t, err)
			held = append(held, u)
		}
	}
	cached := func() (ids []int) {
		for id := 1; id <= 3; id++ {
			if idmap.Cached[User](ctx, db, id) != nil {
				ids = append(ids, id)
			}
		}
		return ids
	}
	load()
	require.Equal(t, []int{1, 2, 3}, cached())

	remote := func(table string, keys ...any) {
		require.NoError(t, l.Publish(ctx, []bus.Message{{Origin: "other-instance", Seq: 1, DB: name, Table: table, Keys: keys, Columns: []string{"id"}}}))
		l.Sync()
	}
	remote("users", int64(2))
	require.Equal(t, []int{1, 3}, cached(), "a remote key expires that key only")
	load()
	require.NoError(t, l.Publish(ctx, []bus.Message{{Origin: "other-instance", Seq: 1, DB: name, Table: "users", Keys: []any{int64(2)}, Columns: []string{"email"}}}))
	l.Sync()
	require.Empty(t, cached(), "keys of other columns than the types' key expire the table")
	load()
	remote("USERS_other")
	require.Equal(t, []int{1, 2, 3}, cached(), "another table's message expires nothing here")
	remote("users")
	require.Empty(t, cached(), "a table message expires the table")
	load()
	remote("")
	require.Empty(t, cached(), "a database message expires everything")
	load()

	// Our own messages, and other databases', are ignored.
	require.NoError(t, l.Publish(ctx, []bus.Message{{Origin: idmap.InstanceID(), Seq: 1, DB: name, Table: "users"}}))
	require.NoError(t, l.Publish(ctx, []bus.Message{{Origin: "other-instance", Seq: 1, DB: name + "-not", Table: "users"}}))
	l.Sync()
	require.Equal(t, []int{1, 2, 3}, cached())

	st, _ := idmap.StatsOf(db)
	require.Equal(t, uint64(5), st.Bus.Received)
	require.Equal(t, uint64(5), st.Expiries.Remote)

	// A message that lands while a load is under way makes that load
	// stale: it is not kept as fresh.
	q0 := c.Queries()
	rows, err := db.QueryContext(ctx, "SELECT id, name, email FROM users WHERE id = 1")
	require.NoError(t, err)
	remote("users", int64(1))
	var u *User
	require.NoError(t, idmap.Bind(rows, &u))
	require.Nil(t, idmap.Cached[User](ctx, db, 1), "a load that began before a remote write landed is not fresh")
	_, err = idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Equal(t, q0+2, c.Queries())
}

func TestBusGapServesNothing(t *testing.T) {
	l := bus.NewLoopback()
	defer l.Close()
	db, c, _ := openBus(t, l, 2)
	ctx := context.Background()
	l.Sync()
	u1, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	defer runtime.KeepAlive(u1) // the shared map holds its objects weakly
	require.NotNil(t, idmap.Cached[User](ctx, db, 1))

	st0, _ := idmap.StatsOf(db)
	l.Cut(errors.New("listener killed"))
	l.Sync()
	require.Nil(t, idmap.Cached[User](ctx, db, 1), "a lost subscription expires everything")
	q0 := c.Queries()
	for range 3 {
		_, err := idmap.Get[User](ctx, db, 1)
		require.NoError(t, err)
	}
	require.Equal(t, q0+3, c.Queries(), "during a gap every Get queries")
	sctx := idmap.NewContext(ctx)
	_, err = idmap.Get[User](sctx, db, 2)
	require.NoError(t, err)
	require.Nil(t, idmap.Cached[User](sctx, db, 2), "scopes serve nothing either")
	st, _ := idmap.StatsOf(db)
	require.False(t, st.Bus.Listening)
	require.Equal(t, uint64(1), st.Bus.Gaps)
	require.Equal(t, uint64(1), st.Flushes["bus gap"]-st0.Flushes["bus gap"], "the loss flushes the database")
	require.Zero(t, st.Shared.Entries, "loads during a gap are not stored in the shared map")

	l.Restore()
	l.Sync()
	require.Nil(t, idmap.Cached[User](ctx, db, 1), "what was loaded during the gap is not fresh after it")
	u1, err = idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.NotNil(t, idmap.Cached[User](ctx, db, 1), "serving again once listening")
	runtime.KeepAlive(u1) // the shared map holds it weakly
	st, _ = idmap.StatsOf(db)
	require.Equal(t, uint64(2), st.Flushes["bus gap"]-st0.Flushes["bus gap"], "the resumption flushes it again")
}

// slowBus never reports that it listens until told to.
type slowBus struct {
	mu sync.Mutex
	h  bus.Handler
}

func (b *slowBus) Publish(context.Context, []bus.Message) error { return nil }
func (b *slowBus) Subscribe(h bus.Handler) error {
	b.mu.Lock()
	b.h = h
	b.mu.Unlock()
	return nil
}
func (b *slowBus) listen() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.h.Gap(bus.Gap{Resumed: true})
}

type failingBus struct{ slowBus }

func (*failingBus) Subscribe(bus.Handler) error { return errors.New("no server") }

func TestBusStartsPaused(t *testing.T) {
	b := &slowBus{}
	db, _, _ := openBus(t, b, 1)
	ctx := context.Background()
	_, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Nil(t, idmap.Cached[User](ctx, db, 1), "nothing is served before the bus listens")
	b.listen()
	u, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.NotNil(t, idmap.Cached[User](ctx, db, 1))
	runtime.KeepAlive(u) // the shared map holds its objects weakly

	_, err = idmap.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "x.db"), idmap.Name("bus-failing"), idmap.WithBus(&failingBus{}))
	require.ErrorContains(t, err, "idmap: WithBus: subscribing: no server")
	_, err = idmap.Open("sqlite3", "file:x.db", idmap.WithBus(nil))
	require.ErrorContains(t, err, "idmap: WithBus: nil bus")
}

// outboxBus is a ConnPublisher whose statement writes its messages into a
// table of the same database: they commit, or not, with the transaction.
type outboxBus struct {
	slowBus
	bad       bool
	published []bus.Message
}

func (b *outboxBus) Statement(msgs []bus.Message) (string, []any) {
	if b.bad {
		return "INSERT INTO no_such_table VALUES (?)", []any{"x"}
	}
	var args []any
	q := "INSERT INTO outbox (payload) VALUES "
	for i, m := range msgs {
		if i > 0 {
			q += ", "
		}
		q += "(?)"
		args = append(args, string(m.Encode()))
	}
	return q, args
}

func (b *outboxBus) Publish(_ context.Context, msgs []bus.Message) error {
	b.mu.Lock()
	b.published = append(b.published, msgs...)
	b.mu.Unlock()
	return nil
}

func TestBusConnPublisherCommitsWithTheWrite(t *testing.T) {
	b := &outboxBus{}
	db, _, _ := openBus(t, b, 2)
	b.listen()
	ctx := context.Background()
	mustExec(t, db, "CREATE TABLE outbox (payload TEXT NOT NULL)")
	outbox := func() (tables []string) {
		rows, err := db.QueryContext(ctx, "SELECT payload FROM outbox")
		require.NoError(t, err)
		var ps []string
		require.NoError(t, idmap.Bind(rows, &ps))
		for _, p := range ps {
			m, err := bus.Decode([]byte(p))
			require.NoError(t, err)
			if m.Table != "outbox" { // the helper's own DELETE
				tables = append(tables, fmt.Sprintf("%s:%v", m.Table, m.Keys))
			}
		}
		mustExec(t, db, "DELETE FROM outbox")
		return tables
	}
	outbox()
	b.published = nil // seeding ran before the outbox existed: Publish took those

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	mustExec(t, tx, "UPDATE users SET name = 'q' WHERE id = 1")
	require.NoError(t, tx.Commit())
	require.Equal(t, []string{"users:[1]"}, outbox(), "published inside the transaction")

	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	mustExec(t, tx, "UPDATE users SET name = 'q' WHERE id = 2")
	require.NoError(t, tx.Rollback())
	require.Empty(t, outbox())

	mustExec(t, db, "UPDATE users SET name = 'r' WHERE id = 2")
	require.Equal(t, []string{"users:[2]"}, outbox(), "autocommit: right after the statement, on its connection")
	require.Empty(t, b.published, "Publish is not used while the connection publishes")

	b.bad = true
	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	mustExec(t, tx, "UPDATE users SET name = 'lost' WHERE id = 1")
	err = tx.Commit()
	require.ErrorContains(t, err, "publishing invalidations before COMMIT failed, the transaction was rolled back")
	u, err := idmap.Get[User](ctx, db, 1)
	require.NoError(t, err)
	require.Equal(t, "q", u.Name, "the write did not commit without its message")

	mustExec(t, db, "UPDATE users SET name = 's' WHERE id = 2")
	require.Equal(t, []string{"users:[2]"}, slices.Collect(func(yield func(string) bool) {
		for _, m := range b.published {
			yield(fmt.Sprintf("%s:%v", m.Table, m.Keys))
		}
	}), "autocommit: when the connection cannot publish, Publish does")
}

// A database closed and opened again under its name with another bus
// follows the new bus only: the old one, closed, pauses nothing.
func TestBusReopenedWithAnotherBus(t *testing.T) {
	dsn := "file:" + filepath.Join(t.TempDir(), "re.db") + "?_journal_mode=WAL"
	ctx := context.Background()
	b1 := bus.NewLoopback()
	db1, err := idmap.Open("sqlite3", dsn, idmap.Name("bus-reopened"), idmap.WithBus(b1))
	require.NoError(t, err)
	db1b, err := idmap.Open("sqlite3", dsn, idmap.Name("bus-reopened"), idmap.WithBus(b1))
	require.NoError(t, err)
	b1.Sync()
	mustExec(t, db1, usersDDL)
	mustExec(t, db1, "INSERT INTO users (id, name) VALUES (1, 'a')")
	require.NoError(t, db1.Close())
	u, err := idmap.Get[User](ctx, db1b, 1)
	require.NoError(t, err)
	require.NotNil(t, idmap.Cached[User](ctx, db1b, 1), "the other *sql.DB still follows the bus")
	runtime.KeepAlive(u) // the shared map holds it weakly
	require.NoError(t, db1b.Close())
	require.NoError(t, b1.Close()) // its last gap reaches no database now

	b2 := bus.NewLoopback()
	defer b2.Close()
	db2, err := idmap.Open("sqlite3", dsn, idmap.Name("bus-reopened"), idmap.WithBus(b2))
	require.NoError(t, err)
	defer db2.Close()
	b2.Sync()
	u, err = idmap.Get[User](ctx, db2, 1)
	require.NoError(t, err)
	require.NotNil(t, idmap.Cached[User](ctx, db2, 1), "serving: the closed bus no longer pauses the database")
	st, _ := idmap.StatsOf(db2)
	require.True(t, st.Bus.Listening)
	runtime.KeepAlive(u)

	// A closed bus cannot be subscribed to again.
	_, err = idmap.Open("sqlite3", dsn, idmap.Name("bus-reopened-2"), idmap.WithBus(b1))
	require.ErrorIs(t, err, bus.ErrClosed)
}
