package pgsecret

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestOfStringAndRedact: the passwords of connection strings that Go's URL
// parser reads differently from pgx are found and removed.
func TestOfStringAndRedact(t *testing.T) {
	for _, c := range []struct{ conn, pw string }{
		{"postgres://user:12/S3cret@host/db", "12/S3cret"},
		{"postgres://user:12?S3cret@host/db", "12?S3cret"},
		{"postgres://user:12#S3cret@host/db", "12#S3cret"},
		{"postgres://user:p@ss@host/db", "p@ss"},
		{"host=h user=u password='it''s s3cret' dbname=d", ""},
		{"host=h password=S3cret dbname=d", "S3cret"},
		{"postgres://h/db?sslpassword=S3cret&x=1", "S3cret"},
	} {
		got := OfString(c.conn)
		if c.pw != "" && !contains(got, c.pw) {
			t.Errorf("OfString(%q) = %q: misses %q", c.conn, got, c.pw)
		}
		text := Redact("connecting with "+c.conn, got)
		if c.pw != "" && strings.Contains(text, c.pw) {
			t.Errorf("Redact: %q still holds %q", text, c.pw)
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestNewError: the text is prefixed and redacted, and the error unwraps
// to the sentinels and a redacted server error, never to the original.
func TestNewError(t *testing.T) {
	sentinel := errors.New("closed")
	pgErr := &pgconn.PgError{Code: "28P01", Message: "password hunter2 wrong"}
	inner := fmt.Errorf("dial user:hunter2@h: %w; %w; %w", pgErr, context.DeadlineExceeded, sentinel)
	err := NewError("pgbus", "connecting", inner, []string{"hunter2"}, sentinel)
	if strings.Contains(err.Error(), "hunter2") || !strings.HasPrefix(err.Error(), "pgbus: connecting: ") {
		t.Fatalf("error %q", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, sentinel) {
		t.Errorf("%v does not match its sentinels", err)
	}
	got, ok := errors.AsType[*pgconn.PgError](err)
	if !ok || got.Code != "28P01" || strings.Contains(got.Message, "hunter2") {
		t.Errorf("server error %+v", got)
	}
	if errors.Is(err, inner) {
		t.Error("the error unwraps to the original, which holds the password")
	}
	if e := NewError("pgfeed", "closing", nil, nil); e.Error() != "pgfeed: closing" {
		t.Errorf("nil cause: %q", e)
	}
}
