package pgbus_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/bus/pgbus"
)

// trustItem is on a table of this process's own (the server is shared).
type trustItem struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

var trustTable = unique("pgbus_trust")

func init() { idmap.Model[trustItem](idmap.Table(trustTable)) }

// The trust model, on a real PostgreSQL: whoever can NOTIFY on the channel
// can send forged, replayed, truncated and oversized payloads. With a Key,
// the subscription drops (and counts) every payload without a valid tag;
// with or without one, no payload makes idmap serve a stale or wrong
// object, and none stalls the subscription into a gap. Another instance's
// writes are made outside idmap (a plain connection), so that only the
// bus's messages expire them: a message lost or suppressed would show as a
// stale row.
func TestPostgresForgedMessagesNeverServeStale(t *testing.T) {
	for _, keyed := range []bool{true, false} {
		t.Run(fmt.Sprintf("Key=%t", keyed), func(t *testing.T) {
			ctx := context.Background()
			ch := unique("pgbus_trust")
			key := []byte("a key of the deployment, 32 bytes")
			opts := []pgbus.Option{pgbus.Channel(ch), pgbus.MaxMessageSize(2048)}
			if keyed {
				opts = append(opts, pgbus.Key(key))
			}
			reader, _ := newBus(t, nil, opts...)
			writer, _ := newBus(t, nil, opts...) // another instance's bus

			plain := conn(t)
			const rows = 40
			if _, err := plain.Exec(ctx, "DROP TABLE IF EXISTS "+trustTable); err != nil {
				t.Fatal(err)
			}
			if _, err := plain.Exec(ctx, "CREATE TABLE "+trustTable+" (id BIGINT PRIMARY KEY, name TEXT NOT NULL)"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = conn(t).Exec(context.Background(), "DROP TABLE IF EXISTS "+trustTable) })
			if _, err := plain.Exec(ctx, "INSERT INTO "+trustTable+" SELECT i, 'v0-' || i FROM generate_series(1, $1) AS i", rows); err != nil {
				t.Fatal(err)
			}
			name := "trust-" + ch
			db, err := idmap.Open("pgx", pgDSN(t), idmap.Name(name), idmap.WithBus(reader))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			pollUntil(t, "the subscription", func() bool { st, _ := idmap.StatsOf(db); return st.Bus.Listening })

			var held []*trustItem // keeps the map's weak entries alive
			load := func() {
				held = held[:0]
				for i := int64(1); i <= rows; i++ {
					it, err := idmap.Get[trustItem](ctx, db, i)
					if err != nil {
						t.Fatal(err)
					}
					held = append(held, it)
				}
			}
			load()

			seq := uint64(0)
			write := func(id int64, value string) bus.Message {
				if _, err := plain.Exec(ctx, "UPDATE "+trustTable+" SET name = $1 WHERE id = $2", value, id); err != nil {
					t.Fatal(err)
				}
				seq++
				m := bus.Message{Origin: "other-instance", Seq: seq, DB: name, Table: trustTable, Keys: []any{id}, Columns: []string{"id"}}
				if err := writer.Publish(ctx, []bus.Message{m}); err != nil {
					t.Fatal(err)
				}
				return m
			}
			received := func(want uint64) {
				pollUntil(t, fmt.Sprintf("%d messages applied", want), func() bool {
					st, _ := idmap.StatsOf(db)
					return st.Bus.Received == want
				})
			}
			first := write(1, "v1-1")
			received(1)
			load()

			send := func(p []byte) {
				if _, err := plain.Exec(ctx, "SELECT pg_notify($1, $2)", ch, string(p)); err != nil {
					t.Fatal(err)
				}
			}
			signed := bus.Sign(first.Encode(), nil)
			if keyed {
				signed = bus.Sign(first.Encode(), key)
			}
			forged := bus.Message{Origin: "other-instance", Seq: 1 << 60, DB: name, Table: trustTable, Keys: []any{int64(2)}, Columns: []string{"id"}}
			send(bus.Message{Origin: "attacker", Seq: 1, DB: name}.Encode())
			send(forged.Encode())
			send(bus.Sign(forged.Encode(), []byte("the attacker's own key, 32 bytes")))
			send(signed) // replayed
			send(signed[:len(signed)-7])
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = fmt.Sprint(i)
			}
			send([]byte(`{"v":1,"o":"attacker","s":2,"d":"` + name + `","t":"` + trustTable + `","c":["id"],"k":[` + strings.Join(keys, ",") + `]}`))
			send([]byte("not a message"))

			write(3, "v1-3")
			write(2, "v1-2")
			// Applied: first, the replay and the two writes; without a key,
			// the three forged messages too.
			if keyed {
				received(4)
			} else {
				received(7)
			}

			check := func() {
				for i := int64(1); i <= rows; i++ {
					var want string
					if err := plain.QueryRow(ctx, "SELECT name FROM "+trustTable+" WHERE id = $1", i).Scan(&want); err != nil {
						t.Fatal(err)
					}
					got, err := idmap.Get[trustItem](ctx, db, i)
					if err != nil {
						t.Fatal(err)
					}
					if got.Name != want {
						t.Errorf("row %d: served %q; the database has %q", i, got.Name, want)
					}
					if c := idmap.Cached[trustItem](ctx, db, i); c != nil && c.Name != want {
						t.Errorf("row %d: cached %q; the database has %q", i, c.Name, want)
					}
				}
			}
			check()
			load()
			check()

			d := reader.Dropped()
			st, _ := idmap.StatsOf(db)
			t.Logf("dropped %+v; received %d; gaps %d", d, st.Bus.Received, st.Bus.Gaps)
			if d.TooLarge != 1 {
				t.Errorf("Dropped().TooLarge = %d; want 1", d.TooLarge)
			}
			if keyed && d.Unauthenticated != 5 { // forged ×3, truncated, garbage
				t.Errorf("Dropped().Unauthenticated = %d; want 5", d.Unauthenticated)
			}
			if !keyed && d.Malformed != 2 { // truncated, garbage
				t.Errorf("Dropped().Malformed = %d; want 2", d.Malformed)
			}
			if st.Bus.Gaps != 0 {
				t.Errorf("%d gaps: a payload stalled the subscription", st.Bus.Gaps)
			}
		})
	}
}

// pollUntil polls cond until it holds, or fails the test after 10 s.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: timed out", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOptionsSizeAndKey(t *testing.T) {
	for _, o := range []pgbus.Option{pgbus.MaxMessageSize(-1), pgbus.Key([]byte("short")), pgbus.Key(nil), pgbus.Key([]byte{})} {
		if _, err := pgbus.NewFromConfig(context.Background(), pgConfig(t), o); err == nil || !strings.HasPrefix(err.Error(), "pgbus: ") {
			t.Errorf("NewFromConfig: %v; want a pgbus: error", err)
		}
	}
}
