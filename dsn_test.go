package idmap

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRedactDSN(t *testing.T) {
	const (
		g = dialectGeneric
		l = dialectSQLite
		m = dialectMySQL
		p = dialectPostgres
	)
	for _, c := range []struct {
		d       dialect
		in, out string
	}{
		{p, "postgres://user:secret@host:5432/db?sslmode=disable", "postgres://user@host:5432/db?sslmode=disable"},
		{p, "postgres://user:secret@host/db?password=secret2&sslmode=disable", "postgres://user@host/db?sslmode=disable"},
		{p, "postgres://user:secret@host/db?sslmode=disable&PassWord=secret2", "postgres://user@host/db?sslmode=disable"},
		{p, "postgres://user:secret@host/db?sslmode=disable&sslpassword=secret2&x=1", "postgres://user@host/db?sslmode=disable&x=1"},
		{p, "postgres://host/db?pass%77ord=secret", "postgres://host/db"},
		{p, "postgres://host/db?password=se&cret&x=1", "postgres://host/db?x=1"},
		// Read differently by Go's URL parser and by a person (issue 12).
		{p, "postgres://user:12/secret@host/db", "postgres://user@host/db"},
		{p, "postgres://user:12?secret@host/db", "postgres://user@host/db"},
		{p, "postgres://user:12#secret@host/db", "postgres://user@host/db"},
		{p, "postgresql://us/er:secret@host/db", "postgresql://host/db"},
		{p, "postgres://user:secret@host/db#secret2", "postgres://user@host/db"},
		{p, "postgres://host/db", "postgres://host/db"},
		{p, "postgres://user@host/db", "postgres://user@host/db"},
		{p, "host=h user=u password=secret dbname=d", "host=h user=u dbname=d"},
		{p, "host=h password='se cret' dbname=d", "host=h dbname=d"},
		{p, `host=h password='se\' cret' dbname=d`, "host=h dbname=d"},
		{p, `host=h password = secret\ 2 dbname=d`, "host=h dbname=d"},
		{p, "host=h sslpassword=secret dbname=d password=secret2", "host=h dbname=d"},
		{p, "host=h PASSWORD='secret", "host=h"},
		{g, "Server=h;Password=secret;Database=d", "Server=h;Database=d"},
		{g, "Server=h;Pwd={se;cret}};x};Database=d", "Server=h;Database=d"},
		{m, "user:secret@tcp(127.0.0.1:3306)/db?parseTime=true", "user@tcp(127.0.0.1:3306)/db?parseTime=true"},
		{m, "user:p@ss:w@rd@tcp(h)/db", "user@tcp(h)/db"},
		{m, "user:se/cr(et@tcp(h)/db", "user@tcp(h)/db"},
		{m, "user://secret@tcp(h)/db", "user@tcp(h)/db"},
		{m, "user:secret@/db", "user@/db"},
		{m, "user@unix(/tmp/sock)/db", "user@unix(/tmp/sock)/db"},
		{m, "tcp(h)/db", "tcp(h)/db"},
		{g, "user:secret@tcp(h)/db", "user@tcp(h)/db"},
		{l, "file:app.db?_auth_user=u&_auth_pass=secret&cache=shared", "file:app.db?_auth_user=u&cache=shared"},
		{l, "file:app.db?_auth&_auth_user=u&_auth_pass=secret", "file:app.db?_auth&_auth_user=u"},
		{l, "file:app.db", "file:app.db"},
		{l, ":memory:", ":memory:"},
		{l, "file:my@file.db", "file:my@file.db"},
		{l, "/tmp/a:b@c.db", "/tmp/a:b@c.db"},
		{l, "file:a.db?mode=memory&_foreign_keys=1", "file:a.db?mode=memory&_foreign_keys=1"},
		{g, "", ""},
	} {
		got, secrets := redactDSN(c.in, c.d)
		if got != c.out {
			t.Errorf("redactDSN(%q, %v) = %q; want %q", c.in, c.d, got, c.out)
		}
		if strings.Contains(got, "secret") || strings.Contains(got, "rd@") || strings.Contains(got, "cret") {
			t.Errorf("redactDSN(%q) = %q shows the password", c.in, got)
		}
		if strings.Contains(c.in, "secret") && !slices.ContainsFunc(secrets, func(s string) bool { return strings.Contains(s, "secret") || strings.Contains(s, "cret") }) {
			t.Errorf("redactDSN(%q): secrets %q do not hold the password", c.in, secrets)
		}
	}
}

// scrubError hides the secrets of the text, and keeps what errors.Is
// matches.
func TestScrubError(t *testing.T) {
	_, secrets := redactDSN("postgres://user:12/S3cret@host/db", dialectPostgres)
	err := fmt.Errorf("failed to connect to `user=user database=S3cret@host/db`: %w", driver.ErrBadConn)
	got := scrubError(err, secrets)
	if strings.Contains(got.Error(), "S3cret") || !strings.Contains(got.Error(), "failed to connect") {
		t.Errorf("scrubError: %q", got)
	}
	if !errors.Is(got, driver.ErrBadConn) {
		t.Errorf("scrubError: %v is not driver.ErrBadConn", got)
	}
	plain := errors.New("dial tcp: connection refused")
	if scrubError(plain, secrets) != plain {
		t.Errorf("scrubError changed an error without secrets")
	}
}

func FuzzRedactDSN(f *testing.F) {
	f.Add("postgres://user:PASSWORD@host/db", uint8(3))
	f.Add("user:PASSWORD@tcp(h)/db", uint8(2))
	f.Add("password=PASSWORD host=h", uint8(3))
	f.Add("file:x.db?_auth_pass=PASSWORD", uint8(1))
	f.Fuzz(func(t *testing.T, s string, d uint8) {
		_, _ = redactDSN(s, dialect(d%4)) // never panics
	})
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"ID": "id", "UserID": "user_id", "HTTPServer": "http_server", "CreatedAt": "created_at",
		"Name": "name", "A": "a", "OAuth2Token": "o_auth2_token", "userName": "user_name",
	} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestParseInt64(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "42": 42, "-7": -7, "+9": 9, "9223372036854775807": 9223372036854775807, "-922337203685477580": -922337203685477580} {
		if got, ok := parseInt64([]byte(in)); !ok || got != want {
			t.Errorf("parseInt64(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-", "1a", " 1", "1.0", "99999999999999999999", "9223372036854775808"} {
		if _, ok := parseInt64([]byte(in)); ok {
			t.Errorf("parseInt64(%q) ok; want not", in)
		}
	}
	// The fast path agrees with the slow one.
	for _, in := range []string{"42", "-3", "x"} {
		a, errA := convertKey([]byte(in), int64Type)
		b, errB := convertKey(in, int64Type)
		if (errA == nil) != (errB == nil) || (errA == nil && a != b) {
			t.Errorf("convertKey(%q): []byte gives %v, %v; string gives %v, %v", in, a, errA, b, errB)
		}
	}
}

// randomPassword returns a password of 8 to 24 printable ASCII characters
// (space to ~), every one as likely.
func randomPassword(r *rand.Rand) string {
	b := make([]byte, 8+r.IntN(17))
	for i := range b {
		b[i] = byte(' ' + r.IntN('~'-' '+1))
	}
	return string(b)
}

// pgxQuote quotes a value for a libpq/pgx key=value string.
func pgxQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// pgxEscape escapes an unquoted value for a libpq/pgx key=value string.
func pgxEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == ' ' || (i == 0 && c == '\'') {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// dsnSyntaxes are the DSN syntaxes of the supported drivers, each with a
// password in it (written as the driver reads it, or as a person might
// write it unescaped), and the name wanted when it is unambiguous.
var dsnSyntaxes = []struct {
	name string
	d    dialect
	dsn  func(pw string) string
	want string // "" when any name without the password will do
}{
	{"URLRaw", dialectPostgres, func(pw string) string { return "postgres://user:" + pw + "@host:5432/db?sslmode=disable" }, ""},
	{"URLEscaped", dialectPostgres, func(pw string) string {
		return "postgres://" + url.UserPassword("user", pw).String() + "@host:5432/db?sslmode=disable"
	}, "postgres://user@host:5432/db?sslmode=disable"},
	{"URLQuery", dialectPostgres, func(pw string) string {
		return "postgres://user@host/db?sslmode=disable&password=" + url.QueryEscape(pw) + "&application_name=x"
	}, "postgres://user@host/db?sslmode=disable&application_name=x"},
	{"URLQueryFirst", dialectPostgres, func(pw string) string {
		return "postgresql://host/db?PassWord=" + url.QueryEscape(pw)
	}, "postgresql://host/db"},
	{"URLSSLPassword", dialectPostgres, func(pw string) string {
		return "postgres://user@host/db?sslpassword=" + url.QueryEscape(pw) + "&sslmode=require"
	}, "postgres://user@host/db?sslmode=require"},
	{"KeyValueQuoted", dialectPostgres, func(pw string) string {
		return "host=h user=u password=" + pgxQuote(pw) + " dbname=d"
	}, "host=h user=u dbname=d"},
	{"KeyValueEscaped", dialectPostgres, func(pw string) string {
		return "host=h user=u password=" + pgxEscape(pw) + " dbname=d"
	}, "host=h user=u dbname=d"},
	{"KeyValueSSL", dialectPostgres, func(pw string) string {
		return "sslpassword = " + pgxQuote(pw) + " host=h dbname=d"
	}, "host=h dbname=d"},
	{"KeyValueUpper", dialectPostgres, func(pw string) string {
		return "host=h PASSWORD=" + pgxQuote(pw)
	}, "host=h"},
	{"MySQL", dialectMySQL, func(pw string) string { return "user:" + pw + "@tcp(127.0.0.1:3306)/db?parseTime=true" }, ""},
	{"MySQLUnix", dialectMySQL, func(pw string) string { return "user:" + pw + "@unix(/tmp/mysql.sock)/db" }, ""},
	{"MySQLNoAddr", dialectMySQL, func(pw string) string { return "user:" + pw + "@/db" }, ""},
	{"SQLiteAuth", dialectSQLite, func(pw string) string {
		return "file:app.db?_auth&_auth_user=u&_auth_pass=" + url.QueryEscape(pw) + "&cache=shared"
	}, "file:app.db?_auth&_auth_user=u&cache=shared"},
	{"ODBC", dialectGeneric, func(pw string) string {
		return "Server=h;Pwd={" + strings.ReplaceAll(pw, "}", "}}") + "};Database=d"
	}, "Server=h;Database=d"},
	{"GenericURL", dialectGeneric, func(pw string) string { return "sqlserver://user:" + pw + "@host?database=d" }, ""},
	{"GenericQuery", dialectGeneric, func(pw string) string { return "clickhouse://host/db?pass=" + url.QueryEscape(pw) }, "clickhouse://host/db"},
}

// Property: for every DSN syntax of the supported drivers and random
// passwords of every printable character, the name holds neither the
// password nor an escaped form of it, and an error that quotes the
// password, or the part of it after a separator (as pgx does when it reads
// "user:12/S3cret@host" as a host and port), is scrubbed of it.
func TestRedactDSNProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(12, uint64(time.Now().UnixNano())))
	for _, syn := range dsnSyntaxes {
		t.Run(syn.name, func(t *testing.T) {
			for range 2000 {
				pw := randomPassword(r)
				dsn := syn.dsn(pw)
				name, secrets := redactDSN(dsn, syn.d)
				for _, form := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw), pgxQuote(pw)} {
					if strings.Contains(name, form) {
						t.Fatalf("redactDSN(%q) = %q holds the password %q", dsn, name, pw)
					}
				}
				// Nothing else is removed (a "?" or "&" in the password,
				// taken for a parameter, may remove more: over-redaction).
				if syn.want != "" && name != syn.want && !strings.ContainsAny(pw, "?&") {
					t.Fatalf("redactDSN(%q) = %q; want %q", dsn, name, syn.want)
				}
				// As a driver may quote it: whole, or (pgx reading
				// "user:12/S3cret@host" as host "user", port 12, database
				// "S3cret@host") the parts of it between URL delimiters.
				err := scrubError(fmt.Errorf("cannot connect to %s with password %s", dsn, pw), secrets)
				if msg := err.Error(); strings.Contains(msg, pw) {
					t.Fatalf("scrubError for %q: %q holds the password %q", dsn, msg, pw)
				}
				for _, piece := range strings.FieldsFunc(pw, func(c rune) bool { return strings.ContainsRune("/?#@", c) }) {
					err := scrubError(fmt.Errorf("cannot connect: database %s@host does not exist", piece), secrets)
					// The mask's own letters may join the text around them
					// into the piece ("databas[e x]xxxx" for "e x#…"): look
					// for the piece with the mask taken out.
					if msg := strings.ReplaceAll(err.Error(), secretMask, "\x00"); len(piece) >= 3 && strings.Contains(msg, piece) {
						t.Fatalf("scrubError for %q: %q holds %q, a part of the password %q", dsn, msg, piece, pw)
					}
				}
			}
		})
	}
}
