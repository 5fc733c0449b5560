package idmap

import (
	"net/url"
	"regexp"
	"strings"
)

// redactDSN removes any password from a data source name, in the forms that
// Go's SQL drivers accept:
//
//	postgres://user:secret@host/db        → postgres://user@host/db
//	user:secret@tcp(host:3306)/db         → user@tcp(host:3306)/db
//	host=h user=u password=secret dbname=d → host=h user=u dbname=d
//	file:app.db?_auth_pass=secret          → file:app.db
//
// Anything that looks like a password parameter (password, pass, pwd,
// passwd, secret, sslpassword, _auth_pass, …) is dropped from query strings
// and key=value lists.
func redactDSN(dsn string) string {
	s := dsn
	// URL form: scheme://user:pass@host/...
	if i := strings.Index(s, "://"); i > 0 {
		if u, err := url.Parse(s); err == nil {
			if u.User != nil {
				u.User = url.User(u.User.Username())
			}
			u.RawQuery = redactQuery(u.RawQuery)
			s = u.String()
			return s
		}
		// Unparsable URL: drop everything between "://" and the last "@".
		if j := strings.LastIndex(s, "@"); j > i {
			s = s[:i+3] + s[j+1:]
		}
	}
	// Query string of file: and MySQL forms.
	if q := strings.IndexByte(s, '?'); q >= 0 {
		rest := redactQuery(s[q+1:])
		s = s[:q]
		if rest != "" {
			s += "?" + rest
		}
	}
	// MySQL form: [user[:password]@][protocol[(address)]]/dbname
	if at := strings.LastIndex(s, "@"); at >= 0 {
		if c := strings.IndexByte(s[:at], ':'); c >= 0 && !strings.ContainsAny(s[:c], " =/") && mysqlAddr.MatchString(s[at+1:]) {
			s = s[:c] + s[at:]
		}
	}
	// key=value form (libpq, ODBC-like, sqlserver).
	if strings.Contains(s, "=") {
		s = kvPassword.ReplaceAllString(s, "$1")
		s = strings.TrimSpace(strings.Join(strings.Fields(s), " "))
	}
	return s
}

// mysqlAddr matches what follows the @ of a MySQL DSN: tcp(host), unix(path), or /db.
var mysqlAddr = regexp.MustCompile(`^(\w*\(|/)`)

var kvPassword = regexp.MustCompile(`(?i)(^|[\s;])(password|pass|passwd|pwd|secret|sslpassword|_auth_pass)\s*=\s*('(?:[^'\\]|\\.)*'|"[^"]*"|[^\s;]*);?`)

func redactQuery(q string) string {
	if q == "" {
		return q
	}
	parts := strings.Split(q, "&")
	out := parts[:0]
	for _, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if ku, err := url.QueryUnescape(k); err == nil {
			k = ku
		}
		if isSecretKey(k) {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, "&")
}

func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range []string{"pass", "pwd", "secret", "token"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}
