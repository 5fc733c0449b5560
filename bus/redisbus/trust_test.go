package redisbus

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
)

// The trust model, on a real Redis: whoever can publish on the channel can
// send forged, replayed, truncated and oversized payloads. With a Key, the
// subscription drops (and counts) every payload without a valid tag; with
// or without one, no payload makes idmap serve a stale or wrong object,
// and none stalls the subscription into a gap. Another instance's writes
// are made outside idmap (a plain connection to the same SQLite file), so
// that only the bus's messages expire them: a message lost or suppressed
// would show as a stale row.
func TestForgedMessagesNeverServeStale(t *testing.T) {
	for _, keyed := range []bool{true, false} {
		t.Run(fmt.Sprintf("Key=%t", keyed), func(t *testing.T) {
			addr := redisAddr(t)
			ch := testChannel(t)
			key := []byte("a key of the deployment, 32 bytes")
			opts := []Option{Channel(ch), MaxMessageSize(16 << 10)}
			if keyed {
				opts = append(opts, Key(key))
			}
			reader := newBus(t, addr, opts...)
			writer := newBus(t, addr, opts...) // another instance's bus
			ctx := context.Background()

			const rows = 40
			path := filepath.Join(t.TempDir(), "trust.db")
			plain, err := sql.Open("sqlite3", e2eDSN(path))
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			if _, err := plain.Exec(`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= rows; i++ {
				if _, err := plain.Exec(`INSERT INTO items (id, name) VALUES (?, ?)`, i, fmt.Sprint("v0-", i)); err != nil {
					t.Fatal(err)
				}
			}
			name := "trust-" + ch
			db, err := idmap.Open("sqlite3", e2eDSN(path), idmap.Name(name), idmap.WithBus(reader))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			waitFor(t, "the subscription", func() bool { st, _ := idmap.StatsOf(db); return st.Bus.Listening })

			// Load every row: the map holds them (kept alive by held).
			var held []*e2eItem
			load := func() {
				held = held[:0]
				for i := int64(1); i <= rows; i++ {
					it, err := idmap.Get[e2eItem](ctx, db, i)
					if err != nil {
						t.Fatal(err)
					}
					held = append(held, it)
				}
			}
			load()

			seq := uint64(0)
			// write updates a row as the other instance does: in the
			// database, then a message on the bus.
			write := func(id int64, value string) bus.Message {
				if _, err := plain.Exec(`UPDATE items SET name = ? WHERE id = ?`, value, id); err != nil {
					t.Fatal(err)
				}
				seq++
				m := bus.Message{Origin: "other-instance", Seq: seq, DB: name, Table: "items", Keys: []any{id}, Columns: []string{"id"}}
				if err := writer.Publish(ctx, []bus.Message{m}); err != nil {
					t.Fatal(err)
				}
				return m
			}
			// applied waits until the message that expired id was applied
			// (messages are applied in order: so was everything before).
			applied := func(id int64) {
				waitFor(t, fmt.Sprintf("the message for row %d", id), func() bool {
					return idmap.Cached[e2eItem](ctx, db, id) == nil
				})
			}
			first := write(1, "v1-1")
			applied(1)
			load()

			raw := redis.NewClient(testOptions(addr))
			defer raw.Close()
			send := func(p []byte) {
				if err := raw.Publish(ctx, ch, p).Err(); err != nil {
					t.Fatal(err)
				}
			}
			signed := bus.Sign(first.Encode(), key)
			if !keyed {
				signed = first.Encode()
			}
			// Forged: a whole-database message, one that claims the other
			// instance's origin with a sequence far ahead, one under
			// another key; replayed; truncated; oversized; garbage.
			forged := bus.Message{Origin: "other-instance", Seq: 1 << 60, DB: name, Table: "items", Keys: []any{int64(2)}, Columns: []string{"id"}}
			send(bus.Message{Origin: "attacker", Seq: 1, DB: name}.Encode())
			send(forged.Encode())
			send(bus.Sign(forged.Encode(), []byte("the attacker's own key, 32 bytes")))
			send(signed) // replayed
			send(signed[:len(signed)-7])
			huge := make([]string, 200_000)
			for i := range huge {
				huge[i] = fmt.Sprint(i)
			}
			send([]byte(`{"v":1,"o":"attacker","s":2,"d":"` + name + `","t":"items","c":["id"],"k":[` + strings.Join(huge, ",") + `]}`))
			send([]byte("not a message"))

			// The other instance writes on: its messages still count.
			write(3, "v1-3")
			write(2, "v1-2")
			// Applied: first, the replay and the two writes; without a key,
			// the three forged messages too (the tag of the third is not
			// checked).
			want := uint64(4)
			if !keyed {
				want = 7
			}
			waitFor(t, fmt.Sprintf("%d messages applied", want), func() bool {
				st, _ := idmap.StatsOf(db)
				return st.Bus.Received == want
			})

			// Every object served agrees with the database.
			check := func() {
				for i := int64(1); i <= rows; i++ {
					var want string
					if err := plain.QueryRow(`SELECT name FROM items WHERE id = ?`, i).Scan(&want); err != nil {
						t.Fatal(err)
					}
					got, err := idmap.Get[e2eItem](ctx, db, i)
					if err != nil {
						t.Fatal(err)
					}
					if got.Name != want {
						t.Errorf("row %d: served %q; the database has %q", i, got.Name, want)
					}
					if c := idmap.Cached[e2eItem](ctx, db, i); c != nil && c.Name != want {
						t.Errorf("row %d: cached %q; the database has %q", i, c.Name, want)
					}
				}
				rs, err := db.QueryContext(ctx, `SELECT id, name FROM items ORDER BY id`)
				if err != nil {
					t.Fatal(err)
				}
				var all []*e2eItem
				if err := idmap.Bind(rs, &all); err != nil {
					t.Fatal(err)
				}
				for _, it := range all {
					var want string
					_ = plain.QueryRow(`SELECT name FROM items WHERE id = ?`, it.ID).Scan(&want)
					if it.Name != want {
						t.Errorf("row %d: bound %q; the database has %q", it.ID, it.Name, want)
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

// waitFor polls cond until it holds, or fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
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
	for _, o := range []Option{MaxMessageSize(0), MaxMessageSize(-1), Key([]byte("short")), Key(nil)} {
		if _, err := New(&redis.Options{Addr: "127.0.0.1:1"}, o); err == nil || !strings.HasPrefix(err.Error(), "redisbus: ") {
			t.Errorf("New: %v; want a redisbus: error", err)
		}
	}
}
