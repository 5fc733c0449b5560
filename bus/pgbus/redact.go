package pgbus

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/go-idmap/idmap/bus"
)

// An opError is an error of the bus. Its text starts with "pgbus:" and is
// redacted: it never contains the connection's password. It unwraps only
// to causes that carry no connection settings (context errors, the
// server's *pgconn.PgError, bus.ErrClosed): pgx's connection and parse
// errors hold the configuration, password included, so they are not kept.
type opError struct {
	msg    string
	causes []error
}

func (e *opError) Error() string   { return e.msg }
func (e *opError) Unwrap() []error { return e.causes }

// newError returns "pgbus: what: err", with secrets and anything that looks
// like a password removed from err's text.
func newError(what string, err error, secrets ...string) error {
	if err == nil {
		return &opError{msg: "pgbus: " + redact(what, secrets)}
	}
	text := strings.TrimPrefix(err.Error(), "pgbus: ")
	e := &opError{msg: "pgbus: " + redact(what+": "+text, secrets)}
	if errors.Is(err, ErrClosed) {
		e.causes = append(e.causes, ErrClosed)
	} else if errors.Is(err, bus.ErrClosed) {
		e.causes = append(e.causes, bus.ErrClosed)
	}
	for _, sentinel := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, sentinel) {
			e.causes = append(e.causes, sentinel)
		}
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		c := *pgErr
		c.Message = redact(c.Message, secrets)
		c.Detail = redact(c.Detail, secrets)
		c.Hint = redact(c.Hint, secrets)
		e.causes = append(e.causes, &c)
	}
	return e
}

const mask = "xxxxx"

var (
	// password=… and sslpassword=… in key=value strings and query strings.
	kvSecret = regexp.MustCompile(`(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'` + "`" + `]+)`)
	// scheme://user:password@host
	urlSecret = regexp.MustCompile(`(://[^:@/\s` + "`" + `]*):[^@\s` + "`" + `]*@`)
)

// redact removes each secret (and its URL-escaped forms) and anything that
// looks like a password setting from s.
func redact(s string, secrets []string) string {
	for _, p := range secrets {
		if p == "" {
			continue
		}
		for _, form := range []string{p, url.QueryEscape(p), url.PathEscape(p), strings.TrimPrefix(url.UserPassword("", p).String(), ":")} {
			if form != "" {
				s = strings.ReplaceAll(s, form, mask)
			}
		}
	}
	s = kvSecret.ReplaceAllString(s, "${1}"+mask)
	s = urlSecret.ReplaceAllString(s, "${1}:"+mask+"@")
	return s
}

// secretsOf returns the passwords of cfg.
func secretsOf(cfg *pgx.ConnConfig) []string {
	var out []string
	if cfg.Password != "" {
		out = append(out, cfg.Password)
	}
	for k, v := range cfg.RuntimeParams {
		if strings.Contains(strings.ToLower(k), "pass") && v != "" {
			out = append(out, v)
		}
	}
	return out
}

// secretsOfString returns what may be passwords in a connection string
// that pgx could not parse: the password of a URL's user information, and
// the values of password and sslpassword settings.
func secretsOfString(connString string) []string {
	var out []string
	if i := strings.Index(connString, "://"); i >= 0 {
		rest := connString[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok && pw != "" {
				out = append(out, pw)
				if u, err := url.PathUnescape(pw); err == nil && u != pw {
					out = append(out, u)
				}
			}
		}
	}
	for _, m := range kvSecret.FindAllStringSubmatch(connString, -1) {
		v := strings.Trim(m[2], "'")
		if v != "" {
			out = append(out, v)
			if u, err := url.QueryUnescape(v); err == nil && u != v {
				out = append(out, u)
			}
		}
	}
	return out
}
