package pgbus

import (
	"github.com/jackc/pgx/v5"

	"github.com/go-idmap/idmap/bus"
	"github.com/go-idmap/idmap/internal/pgsecret"
)

// newError returns "pgbus: what: err", with secrets and anything that looks
// like a password removed from err's text. It unwraps only to causes that
// carry no connection settings (context errors, the server's
// *pgconn.PgError, ErrClosed, bus.ErrClosed): pgx's connection and parse
// errors hold the configuration, password included, so they are not kept.
func newError(what string, err error, secrets ...string) error {
	return pgsecret.NewError("pgbus", what, err, secrets, ErrClosed, bus.ErrClosed)
}

// redact removes each secret (and its URL-escaped forms) and anything that
// looks like a password setting from s.
func redact(s string, secrets []string) string { return pgsecret.Redact(s, secrets) }

// secretsOf returns the passwords of cfg.
func secretsOf(cfg *pgx.ConnConfig) []string {
	if cfg == nil {
		return nil
	}
	return pgsecret.Of(&cfg.Config)
}

// secretsOfString returns what may be passwords in a connection string
// that pgx could not parse.
func secretsOfString(connString string) []string { return pgsecret.OfString(connString) }
