package pgbus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/go-idmap/idmap/bus"
)

func TestStatementText(t *testing.T) {
	if q, args := statement("idmap", nil, nil); q != "" || args != nil {
		t.Errorf("no messages: got %q, %v; want \"\", nil", q, args)
	}
	msgs := []bus.Message{
		{Origin: "o", Seq: 1, DB: "d", Table: "users", Keys: []any{int64(1)}},
		{Origin: "o", Seq: 2, DB: "d", Table: "books"},
		{Origin: "o", Seq: 3, DB: "d", Table: "x'); DROP TABLE users; --", Keys: []any{"'"}},
	}
	q, args := statement(`we"ird`, msgs, nil)
	if want := "SELECT pg_notify($1, $2), pg_notify($1, $3), pg_notify($1, $4)"; q != want {
		t.Errorf("query %q, want %q", q, want)
	}
	if len(args) != 4 || args[0] != `we"ird` {
		t.Fatalf("args %v: want the channel then 3 payloads", args)
	}
	for i, m := range msgs {
		s, ok := args[i+1].(string)
		if !ok || s != string(m.Encode()) {
			t.Errorf("arg %d = %#v, want the text of %v's encoding", i+2, args[i+1], m)
		}
		if strings.Contains(q, m.Table) {
			t.Errorf("the query contains a value: %q", q)
		}
	}
}

func TestRedact(t *testing.T) {
	const pw = "s3cr/t p@ss'w"
	for _, s := range []string{
		"failed to connect to `user=u database=d`: password " + pw,
		"postgres://" + url.UserPassword("u", pw).String() + "@h/d",
		"postgres://u:" + url.QueryEscape(pw) + "@h/d",
		"cannot parse `host=h password='" + strings.ReplaceAll(pw, "'", `\'`) + "'`",
		"postgres://u:anything@h/d?sslpassword=zzz",
	} {
		got := redact(s, []string{pw})
		for _, bad := range []string{pw, "anything", "zzz", "s3cr"} {
			if strings.Contains(got, bad) {
				t.Errorf("redact(%q) = %q: contains %q", s, got, bad)
			}
		}
	}
	if got := redact("plain message", []string{"x"}); got != "plain message" {
		t.Errorf("redact changed a message without secrets: %q", got)
	}
}

func TestNewErrorCauses(t *testing.T) {
	inner := fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "28P01", Message: "password authentication failed for hunter2"})
	err := newError("connecting", fmt.Errorf("%w; %w", inner, context.DeadlineExceeded), "hunter2")
	if !strings.HasPrefix(err.Error(), "pgbus: connecting: ") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error text %q", err)
	}
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	if !ok || pgErr.Code != "28P01" || strings.Contains(pgErr.Message, "hunter2") {
		t.Errorf("PgError cause: %v, %v", pgErr, ok)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("context.DeadlineExceeded is not a cause")
	}
	again := newError("subscription lost", err)
	if !strings.HasPrefix(again.Error(), "pgbus: subscription lost: connecting: ") {
		t.Errorf("nested error text %q", again)
	}
	if _, ok := errors.AsType[*pgconn.PgError](again); !ok {
		t.Error("nested error lost its PgError")
	}
}
