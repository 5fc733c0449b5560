// Package pgsecret keeps PostgreSQL passwords out of the texts of the
// errors that the bus adapters (bus/pgbus, bus/pgfeed) return and log.
//
// pgx's connection and parse errors hold the whole configuration, password
// included, so an adapter never returns them: it returns an Error, whose
// text is redacted and which unwraps only to causes that carry no settings
// (context errors, the server's *pgconn.PgError with its texts redacted,
// and the sentinels the adapter names).
package pgsecret

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Mask replaces what is removed.
const Mask = "xxxxx"

var (
	// password=… and sslpassword=… in key=value strings and query strings.
	kvSecret = regexp.MustCompile(`(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'` + "`" + `]+)`)
	// scheme://user:password@host
	urlSecret = regexp.MustCompile(`(://[^:@/\s` + "`" + `]*):[^@\s` + "`" + `]*@`)
)

// Redact removes each secret (and its URL-escaped forms) and anything that
// looks like a password setting from s.
func Redact(s string, secrets []string) string {
	for _, p := range secrets {
		if p == "" {
			continue
		}
		for _, form := range []string{p, url.QueryEscape(p), url.PathEscape(p), strings.TrimPrefix(url.UserPassword("", p).String(), ":")} {
			if form != "" {
				s = strings.ReplaceAll(s, form, Mask)
			}
		}
	}
	s = kvSecret.ReplaceAllString(s, "${1}"+Mask)
	s = urlSecret.ReplaceAllString(s, "${1}:"+Mask+"@")
	return s
}

// Of returns the passwords of a parsed configuration: its password and the
// values of run-time parameters whose names mention one.
func Of(cfg *pgconn.Config) []string {
	if cfg == nil {
		return nil
	}
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

// OfString returns what may be passwords in a connection string that pgx
// could not parse: the password of a URL's user information (up to the
// last '@'), and the values of password and sslpassword settings.
func OfString(connString string) []string {
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

// An Error is an adapter's error: its text starts with the adapter's name
// and is redacted.
type Error struct {
	msg    string
	causes []error
}

func (e *Error) Error() string   { return e.msg }
func (e *Error) Unwrap() []error { return e.causes }

// NewError returns "prefix: what: err" with secrets and anything that looks
// like a password removed. It unwraps to the context errors and the
// sentinels that err matches, and to a redacted copy of the server's
// *pgconn.PgError, never to err itself.
func NewError(prefix, what string, err error, secrets []string, sentinels ...error) error {
	if err == nil {
		return &Error{msg: prefix + ": " + Redact(what, secrets)}
	}
	text := strings.TrimPrefix(err.Error(), prefix+": ")
	e := &Error{msg: prefix + ": " + Redact(what+": "+text, secrets)}
	for _, s := range append(sentinels, context.Canceled, context.DeadlineExceeded) {
		if errors.Is(err, s) {
			e.causes = append(e.causes, s)
		}
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		c := *pgErr
		c.Message, c.Detail, c.Hint = Redact(c.Message, secrets), Redact(c.Detail, secrets), Redact(c.Hint, secrets)
		e.causes = append(e.causes, &c)
	}
	return e
}
