package idmap

import (
	"strings"
	"testing"
)

func TestRedactDSN(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://user:secret@host:5432/db?sslmode=disable", "postgres://user@host:5432/db?sslmode=disable"},
		{"postgres://user:secret@host/db?password=secret2&sslmode=disable", "postgres://user@host/db?sslmode=disable"},
		{"user:secret@tcp(127.0.0.1:3306)/db?parseTime=true", "user@tcp(127.0.0.1:3306)/db?parseTime=true"},
		{"user:p@ss:w@rd@tcp(h)/db", "user@tcp(h)/db"},
		{"user:secret@/db", "user@/db"},
		{"user@unix(/tmp/sock)/db", "user@unix(/tmp/sock)/db"},
		{"host=h user=u password=secret dbname=d", "host=h user=u dbname=d"},
		{"host=h password='se cret' dbname=d", "host=h dbname=d"},
		{"Server=h;Password=secret;Database=d", "Server=h;Database=d"},
		{"file:app.db?_auth_user=u&_auth_pass=secret&cache=shared", "file:app.db?_auth_user=u&cache=shared"},
		{"file:app.db", "file:app.db"},
		{":memory:", ":memory:"},
		{"file:my@file.db", "file:my@file.db"},
		{"", ""},
	} {
		got := redactDSN(c.in)
		if got != c.want {
			t.Errorf("redactDSN(%q) = %q; want %q", c.in, got, c.want)
		}
		if strings.Contains(got, "secret") || strings.Contains(got, "rd@") {
			t.Errorf("redactDSN(%q) = %q shows the password", c.in, got)
		}
	}
}

func FuzzRedactDSN(f *testing.F) {
	f.Add("postgres://user:PASSWORD@host/db")
	f.Add("user:PASSWORD@tcp(h)/db")
	f.Add("password=PASSWORD host=h")
	f.Fuzz(func(t *testing.T, s string) {
		_ = redactDSN(s) // never panics
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
