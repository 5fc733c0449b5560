package idmap_test

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/go-idmap/idmap"
	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/signals"
)

// pwChars are the characters of the random passwords: every printable
// ASCII character.
func randomPW(r *rand.Rand) string {
	b := make([]byte, 10+r.IntN(15))
	for i := range b {
		b[i] = byte(' ' + r.IntN('~'-' '+1))
	}
	return string(b)
}

// A pwCase is a DSN with a password, opened through idmap.
type pwCase struct {
	name, base, dsn, pw string
	// write, when set, is a statement that the connection can run (the
	// password is right): it publishes a bus message.
	write string
}

// TestPasswordNeverShown opens databases with DSNs of every syntax of the
// supported drivers, holding random passwords of printable characters
// (right ones on SQLite and PostgreSQL, whose roles the test creates,
// wrong ones on MySQL and PostgreSQL, and PostgreSQL URLs that Go's URL
// parser reads differently from a person), connects, writes, flushes, and
// then looks for the password in every place idmap shows something: NameOf,
// StatsOf, AllStats, StatsHandler, the Logger's records, errors, signals
// and bus messages.
func TestPasswordNeverShown(t *testing.T) {
	r := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())))
	var cases []pwCase
	dir := t.TempDir()
	for i := range 5 {
		pw := randomPW(r)
		cases = append(cases, pwCase{
			name: fmt.Sprintf("SQLiteAuth%d", i), base: "sqlite3", pw: pw,
			dsn:   "file:" + filepath.Join(dir, fmt.Sprintf("pw%d.db", i)) + "?_auth&_auth_user=u&_auth_pass=" + url.QueryEscape(pw),
			write: "CREATE TABLE IF NOT EXISTS pw (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO pw (v) VALUES ('x')",
		})
	}
	if dsn := os.Getenv("IDMAP_MYSQL_DSN"); dsn != "" {
		host := "127.0.0.1:3306"
		if i := strings.Index(dsn, "@tcp("); i >= 0 {
			host = dsn[i+5 : i+5+strings.IndexByte(dsn[i+5:], ')')]
		}
		for i := range 4 {
			pw := randomPW(r)
			cases = append(cases, pwCase{name: fmt.Sprintf("MySQLWrong%d", i), base: "mysql", pw: pw,
				dsn: "idmap:" + pw + "@tcp(" + host + ")/idmap_test?timeout=5s"})
		}
	} else {
		t.Log("MySQL cases skipped: IDMAP_MYSQL_DSN is not set")
	}
	if dsn := os.Getenv("IDMAP_PG_DSN"); dsn != "" {
		cases = append(cases, postgresPasswordCases(t, r, dsn)...)
	} else {
		t.Log("PostgreSQL cases skipped: IDMAP_PG_DSN is not set")
	}

	var mu sync.Mutex
	var sigs []string
	record := func(f signals.Flush) {
		mu.Lock()
		defer mu.Unlock()
		sigs = append(sigs, fmt.Sprintf("%+v", f))
	}
	defer signals.PreFlush.Connect(record)()
	defer signals.PostFlush.Connect(record)()

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			var logMu sync.Mutex
			logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
				logMu.Lock()
				defer logMu.Unlock()
				return logs.Write(p)
			}), &slog.HandlerOptions{Level: slog.LevelDebug}))
			l := bus.NewLoopback()
			defer l.Close()
			var shown []string // everything idmap showed
			db, err := idmap.Open(c.base, c.dsn, idmap.Logger(logger), idmap.WithBus(l))
			if err != nil {
				shown = append(shown, "open error: "+err.Error())
			} else {
				defer db.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := db.PingContext(ctx); err != nil {
					shown = append(shown, "ping error: "+err.Error())
					if c.write != "" {
						t.Errorf("the password is right, but: %v", err)
					}
				}
				if c.write != "" {
					if _, err := db.ExecContext(ctx, c.write); err != nil {
						t.Fatalf("write: %v", err)
					}
					if len(l.Sent()) == 0 {
						t.Errorf("the write published nothing")
					}
				} else if _, err := db.ExecContext(ctx, "UPDATE pw SET v = 'y' WHERE id = 1"); err != nil {
					shown = append(shown, "exec error: "+err.Error())
				}
				idmap.Flush(context.Background(), idmap.NameOf(db))
				shown = append(shown, "name: "+idmap.NameOf(db))
				st, _ := idmap.StatsOf(db)
				b, _ := json.Marshal(st)
				shown = append(shown, "stats: "+string(b))
			}
			all, _ := json.Marshal(idmap.AllStats())
			shown = append(shown, "all stats: "+string(all))
			rec := httptest.NewRecorder()
			idmap.StatsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/idmap", nil))
			shown = append(shown, "handler: "+rec.Body.String())
			for _, m := range l.Sent() {
				shown = append(shown, "message: "+string(m.Encode()))
			}
			logMu.Lock()
			shown = append(shown, "log: "+logs.String())
			logMu.Unlock()
			mu.Lock()
			shown = append(shown, "signals: "+strings.Join(sigs, "; "))
			mu.Unlock()
			for _, s := range shown {
				for _, form := range []string{c.pw, url.QueryEscape(c.pw), url.PathEscape(c.pw)} {
					if strings.Contains(s, form) {
						t.Errorf("the password %q (as %q) is shown: %s", c.pw, form, s)
					}
				}
			}
			if testing.Verbose() {
				for _, s := range shown[:min(len(shown), 3)] {
					t.Logf("%.300s", s)
				}
			}
		})
	}
}

// postgresPasswordCases creates a role with a random password (dropped when
// the test ends) and returns DSNs that name it in every syntax pgx reads,
// plus wrong passwords and URLs that Go's parser misreads.
func postgresPasswordCases(t *testing.T, r *rand.Rand, dsn string) []pwCase {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	role := "idmap_pw_" + idmap.RunID
	pw := randomPW(r)
	ctx := context.Background()
	_, _ = admin.Exec(ctx, "DROP SCHEMA IF EXISTS "+role+" CASCADE")
	_, _ = admin.Exec(ctx, "DROP ROLE IF EXISTS "+role)
	if _, err := admin.Exec(ctx, "CREATE ROLE "+role+" LOGIN PASSWORD '"+strings.ReplaceAll(pw, "'", "''")+"'"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+role+" AUTHORIZATION "+role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(ctx, "DROP SCHEMA IF EXISTS "+role+" CASCADE")
		_, _ = admin.Exec(ctx, "DROP ROLE IF EXISTS "+role)
	})
	hostPort := fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
	kvQuote := func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
	}
	write := "CREATE TABLE IF NOT EXISTS " + role + ".pw (id SERIAL PRIMARY KEY, v TEXT); INSERT INTO " + role + ".pw (v) VALUES ('x')"
	db := cfg.Database
	cases := []pwCase{
		{name: "PostgresURL", base: "pgx", pw: pw, write: write,
			dsn: "postgres://" + url.UserPassword(role, pw).String() + "@" + hostPort + "/" + db + "?sslmode=disable"},
		// pgx, like libpq, reads a "+" in a URL's query as itself, not as a
		// space: a space is escaped as %20.
		{name: "PostgresURLQuery", base: "pgx", pw: pw, write: write,
			dsn: "postgres://" + role + "@" + hostPort + "/" + db + "?sslmode=disable&password=" + strings.ReplaceAll(url.QueryEscape(pw), "+", "%20")},
		{name: "PostgresKeyValue", base: "pgx", pw: pw, write: write,
			dsn: fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable", cfg.Host, cfg.Port, role, kvQuote(pw), db)},
	}
	for i := range 3 {
		wrong := randomPW(r)
		cases = append(cases,
			pwCase{name: fmt.Sprintf("PostgresURLWrong%d", i), base: "pgx", pw: wrong,
				dsn: "postgres://" + url.UserPassword(role, wrong).String() + "@" + hostPort + "/" + db + "?sslmode=disable&connect_timeout=5"},
			pwCase{name: fmt.Sprintf("PostgresKeyValueWrong%d", i), base: "pgx", pw: wrong,
				dsn: fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable connect_timeout=5", cfg.Host, cfg.Port, role, kvQuote(wrong), db)},
			// Unescaped, as a person writes it: Go's URL parser (and so
			// pgx) may read part of it as the host, port or database.
			pwCase{name: fmt.Sprintf("PostgresURLRaw%d", i), base: "pgx", pw: wrong,
				dsn: "postgres://" + role + ":" + wrong + "@" + hostPort + "/" + db + "?sslmode=disable&connect_timeout=5"},
		)
	}
	// The examples.
	for _, sep := range []string{"/", "?", "#"} {
		cases = append(cases, pwCase{name: "PostgresURLMisread" + url.PathEscape(sep), base: "pgx", pw: "12" + sep + "S3cret",
			dsn: "postgres://" + role + ":12" + sep + "S3cret@" + hostPort + "/" + db + "?connect_timeout=5"})
	}
	return cases
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// leakyDriver is a base driver whose connector errors quote the DSN, as
// some drivers' parse errors do.
type leakyDriver struct{}

func (leakyDriver) Open(dsn string) (driver.Conn, error) {
	return nil, fmt.Errorf("leaky: cannot open %s", dsn)
}
func (leakyDriver) OpenConnector(dsn string) (driver.Connector, error) {
	return nil, fmt.Errorf("leaky: bad DSN %q", dsn)
}

var registerLeakyStacked sync.Once

// TestStackedOpenErrorRedacted: opening idmap on idmap ("idmap+idmap+x")
// unwraps to the base driver x; the base driver's error on the way is
// scrubbed of the password like every other error of Open.
func TestStackedOpenErrorRedacted(t *testing.T) {
	registerLeakyStacked.Do(func() { sql.Register("leaky-stacked", leakyDriver{}) }) // once: go test -count=2
	const pw = "Pw-4f9c1e2b7a"
	for _, base := range []string{"leaky-stacked", idmap.Register("leaky-stacked")} {
		_, err := idmap.Open(base, "user:"+pw+"@tcp(127.0.0.1:1)/db")
		if err == nil {
			t.Fatalf("%s: no error", base)
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("%s: the error holds the password: %q", base, strings.ReplaceAll(err.Error(), pw, "***"))
		}
	}
}
