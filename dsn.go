package idmap

import (
	"errors"
	"net/url"
	"slices"
	"strings"
)

// redactDSN returns the name of a database opened with dsn on a driver of
// dialect d, and the secrets removed (with the pieces that drivers might
// show apart), for scrubbing errors.
//
// A database's default name is its DSN with every password removed. The
// removal does not trust any parse of the DSN: drivers read DSNs in ways
// that Go's URL parser does not (go-sql-driver/mysql splits user
// information at the last "@", pgx reads "postgres://user:12/S3cret@host"
// as host "user", port 12 and database "S3cret@host"), so each rule
// removes what any of the readings could take for a password, and the
// removals of all the rules are merged. When in doubt, more is removed:
//
//	postgres://user:secret@host/db          → postgres://user@host/db
//	postgres://user:12/S3cret@host/db       → postgres://user@host/db
//	user:p@ss:w/rd@tcp(host:3306)/db        → user@tcp(host:3306)/db
//	host=h user=u password='se cret' dbname=d → host=h user=u dbname=d
//	file:app.db?_auth_user=u&_auth_pass=secret → file:app.db?_auth_user=u
//
// The rules:
//
//   - User information: the text between "scheme://" (or the start of a
//     MySQL DSN) and the last "@" of the whole DSN is dropped when it
//     holds a ":" (it could hold a password); the user name before the
//     first ":" is kept only when it holds none of / ? # @ = & ; ( ) or
//     white space. SQLite DSNs that are not URLs have no user information
//     (their paths may hold "@" and ":").
//   - Parameters: a query parameter (after any "?" or "&") whose name
//     holds pass, pwd, secret, token or salt, in any case and escaped or
//     not, is dropped, and so is each parameter without "=" right after it
//     (an unescaped "&" in the password). In a URL, the fragment is
//     dropped.
//   - key=value lists: a key holding one of those words is dropped with
//     its value, read as far as any of libpq's, pgx's and ODBC's syntaxes
//     would read it: a quoted value to its closing quote (backslash
//     escapes; to the end when unclosed), an unquoted one to the later of
//     the next unescaped white space and the next ";".
//
// Two DSNs that differ only in what is removed get the same name (and so
// share maps): give such databases a Name.
func redactDSN(dsn string, d dialect) (name string, secrets []string) {
	r := redaction{s: dsn}
	urlStart := schemeEnd(dsn)
	switch {
	case d == dialectMySQL:
		// go-sql-driver/mysql: [user[:password]@][net[(addr)]]/dbname,
		// whatever precedes it, split at the last "@".
		r.userinfo(0)
	case urlStart > 0:
		r.userinfo(urlStart)
	case d == dialectGeneric && !isKeyValueList(dsn):
		r.userinfo(0)
	}
	if urlStart > 0 {
		r.fragment(urlStart)
	}
	r.params()
	// ODBC's key=value syntax (";"-separated, braces) is no supported
	// driver's: it is read for other drivers only.
	r.keyValues(d == dialectGeneric)
	return r.result()
}

// A redaction collects the spans of s to remove.
type redaction struct {
	s       string
	cuts    []span
	secrets []string // what was removed as a password (values, not keys)
}

// secret records v, a removed password, for scrubbing errors (appendSecret).
func (r *redaction) secret(v string) {
	if v != "" {
		r.secrets = appendSecret(r.secrets, v)
	}
}

// span is a byte range of the DSN: [from, to).
type span struct{ from, to int } // [from, to)

// cut marks s[from:to] for removal. Spans may overlap: every reading of the
// DSN adds its own, and result removes their union.
func (r *redaction) cut(from, to int) {
	if from < to {
		r.cuts = append(r.cuts, span{from, to})
	}
}

// schemeEnd returns the index after "scheme://" when s begins with a URL
// scheme (RFC 3986: a letter, then letters, digits, + - .), else 0.
func schemeEnd(s string) int {
	i := strings.Index(s, "://")
	if i <= 0 {
		return 0
	}
	for j := 0; j < i; j++ {
		c := s[j]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case j > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return 0
		}
	}
	return i + 3
}

// userinfo removes a password from the user information that starts at
// start and ends at the last "@" of the DSN.
func (r *redaction) userinfo(start int) {
	at := strings.LastIndexByte(r.s, '@')
	if at < start {
		return
	}
	info := r.s[start:at]
	user, _, found := strings.Cut(info, ":")
	if !found {
		return // no password, in any reading
	}
	if user != "" && !strings.ContainsAny(user, "/?#@=&;() \t\r\n\f\v") {
		r.cut(start+len(user), at) // ":password", the "@" kept
		r.secret(info[len(user)+1:])
		return
	}
	r.cut(start, at+1) // unclear where the user name ends: all of it
	r.secret(info)
}

// isKeyValueList reports whether s reads as key=value settings rather
// than as user[:password]@…: an "=" comes before any ":".
func isKeyValueList(s string) bool {
	eq := strings.IndexByte(s, '=')
	colon := strings.IndexByte(s, ':')
	return eq >= 0 && (colon < 0 || eq < colon)
}

// fragment removes a URL's fragment (after the last "@": a "#" before it
// belongs to the user information).
func (r *redaction) fragment(start int) {
	from := start
	if at := strings.LastIndexByte(r.s, '@'); at >= start {
		from = at
	}
	if i := strings.IndexByte(r.s[from:], '#'); i >= 0 {
		r.cut(from+i, len(r.s))
	}
}

// secretWords are what a parameter or key holding a secret is named with.
var secretWords = []string{"pass", "pwd", "secret", "token", "salt"}

// isSecretKey reports whether a parameter or key named k holds a secret: its
// unescaped, lower-cased name contains one of secretWords.
func isSecretKey(k string) bool {
	if u, err := url.QueryUnescape(k); err == nil {
		k = u
	}
	k = strings.ToLower(k)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// params removes secret query parameters. Every "?" and "&" starts a
// parameter in some reading, so each is looked at.
func (r *redaction) params() {
	s := r.s
	for i := 0; i < len(s); i++ {
		if s[i] != '?' && s[i] != '&' {
			continue
		}
		start := i + 1
		end := paramEnd(s, start)
		key, v, ok := strings.Cut(s[start:end], "=")
		if !ok || !isSecretKey(key) {
			continue
		}
		r.secret(v)
		// The parameter, and those without "=" after it.
		for end < len(s) && s[end] == '&' {
			next := paramEnd(s, end+1)
			if strings.IndexByte(s[end+1:next], '=') >= 0 {
				break
			}
			r.secret(s[end+1 : next])
			end = next
		}
		switch {
		case s[i] == '&':
			r.cut(i, end) // "&password=…"
		case end < len(s) && s[end] == '&':
			r.cut(start, end+1) // "password=…&"
		default:
			r.cut(i, end) // "?password=…"
		}
		i = end - 1
	}
}

// paramEnd returns the end of the parameter that starts at i.
func paramEnd(s string, i int) int {
	if j := strings.IndexAny(s[i:], "&#"); j >= 0 {
		return i + j
	}
	return len(s)
}

// keyValues removes secret settings of key=value lists.
func (r *redaction) keyValues(odbc bool) {
	s := r.s
	for i := 0; i < len(s); i++ {
		if i > 0 && !isKVSep(s[i-1]) {
			continue
		}
		// A key: letters, digits, "_", "-", ".", then "=" after optional
		// white space.
		k := i
		for k < len(s) && isKeyByte(s[k]) {
			k++
		}
		if k == i {
			continue
		}
		eq := k
		for eq < len(s) && isSpace(s[eq]) {
			eq++
		}
		if eq >= len(s) || s[eq] != '=' || !isSecretKey(s[i:k]) {
			continue
		}
		v := eq + 1
		for v < len(s) && isSpace(s[v]) {
			v++
		}
		afterSemi := odbc && i > 0 && s[i-1] == ';'
		end := valueEnd(s, v, afterSemi, odbc && strings.IndexByte(s, ';') >= 0)
		r.secret(s[v:end])
		if end > v+1 && (s[v] == '\'' || s[v] == '"' || s[v] == '{') {
			r.secret(s[v+1 : end-1])
		}
		// The separators after it go too, so that the rest reads well.
		for end < len(s) && isSpace(s[end]) {
			end++
		}
		if end < len(s) && s[end] == ';' {
			end++
		}
		for end < len(s) && isSpace(s[end]) {
			end++
		}
		r.cut(i, end)
		i = end - 1
	}
}

// isKeyByte reports whether c may appear in a key of key=value settings.
func isKeyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.'
}

// isSpace reports whether c is ASCII white space.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// isKVSep reports whether c separates key=value settings (libpq's spaces,
// ODBC's ";").
func isKVSep(c byte) bool { return isSpace(c) || c == ';' }

// valueEnd returns the end of the value that starts at v, as far as any
// syntax reads it: libpq's and pgx's (unless odbcOnly), ODBC's (if semi:
// the DSN has ";" separators). The farthest end wins.
func valueEnd(s string, v int, odbcOnly, semi bool) int {
	if v >= len(s) {
		return v
	}
	end := v
	if !odbcOnly {
		end = max(end, libpqValueEnd(s, v))
	}
	if semi {
		end = max(end, odbcValueEnd(s, v))
	}
	return end
}

// libpqValueEnd: a value in single quotes (backslash escapes), else up to
// unescaped white space.
func libpqValueEnd(s string, v int) int {
	quoted := s[v] == '\''
	start := v
	if quoted {
		start++
	}
	for j := start; j < len(s); j++ {
		switch {
		case s[j] == '\\':
			j++
		case quoted && s[j] == '\'':
			return j + 1
		case !quoted && isSpace(s[j]):
			return j
		}
	}
	return len(s)
}

// odbcValueEnd: a value in braces or quotes (the closing character
// doubled inside), else up to ";".
func odbcValueEnd(s string, v int) int {
	closing := byte(0)
	switch s[v] {
	case '{':
		closing = '}'
	case '"', '\'':
		closing = s[v]
	default:
		if j := strings.IndexByte(s[v:], ';'); j >= 0 {
			return v + j
		}
		return len(s)
	}
	for j := v + 1; j < len(s); j++ {
		if s[j] == closing {
			if j+1 < len(s) && s[j+1] == closing {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

// result applies the cuts.
func (r *redaction) result() (string, []string) {
	if len(r.cuts) == 0 {
		return r.s, nil
	}
	slices.SortFunc(r.cuts, func(a, b span) int { return a.from - b.from })
	var b strings.Builder
	pos := 0
	cur := r.cuts[0]
	flush := func(c span) {
		b.WriteString(r.s[pos:c.from])
		pos = c.to
	}
	for _, c := range r.cuts[1:] {
		if c.from <= cur.to {
			cur.to = max(cur.to, c.to)
			continue
		}
		flush(cur)
		cur = c
	}
	flush(cur)
	b.WriteString(r.s[pos:])
	name := b.String()
	if name != r.s && strings.TrimSpace(name) != name {
		name = strings.TrimSpace(name)
	}
	return name, r.secrets
}

// appendSecret adds a removed text to secrets, with its unescaped forms
// and the pieces a driver might show apart: those of 4 bytes or more, and
// the longest. (pgx, for one, names "S3cret@host/db" as the database of
// postgres://user:12/S3cret@host/db.)
func appendSecret(secrets []string, removed string) []string {
	forms := []string{removed}
	if u, err := url.PathUnescape(removed); err == nil {
		forms = append(forms, u)
	}
	if u, err := url.QueryUnescape(removed); err == nil {
		forms = append(forms, u)
	}
	forms = append(forms, unbackslash(removed), strings.ReplaceAll(removed, "}}", "}"),
		strings.ReplaceAll(removed, "''", "'"), strings.ReplaceAll(removed, `""`, `"`))
	for _, f := range forms {
		if len(f) >= 3 { // shorter, it would garble every error it is in
			secrets = append(secrets, f)
		}
		pieces := strings.FieldsFunc(f, func(r rune) bool {
			return strings.ContainsRune(":/?#@&;=()'\"\\{}[], \t\r\n\f\v", r)
		})
		longest := ""
		for _, p := range pieces {
			if len(p) >= 4 {
				secrets = append(secrets, p)
			}
			if len(p) > len(longest) {
				longest = p
			}
		}
		if len(longest) >= 3 {
			secrets = append(secrets, longest)
		}
		// Split as a URL parser splits a misread user information.
		for _, p := range strings.FieldsFunc(f, func(r rune) bool { return r == '/' || r == '?' || r == '#' || r == '@' }) {
			if len(p) >= 3 {
				secrets = append(secrets, p)
			}
		}
	}
	// Longest first, so that a secret is replaced before its pieces.
	slices.SortFunc(secrets, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(secrets)
}

// unbackslash reads libpq's escapes: a backslash takes the next byte as it is.
func unbackslash(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b = append(b, s[i])
	}
	return string(b)
}

// secretMask replaces secrets in error texts.
const secretMask = "xxxxx"

// scrubError returns err, or an error of the same meaning whose text holds
// none of secrets: a driver's error may quote the DSN (pgx's connection
// errors name the user and database it read from it). errors.Is still
// matches what err matches (driver.ErrBadConn, context errors); errors.As
// does not reach err, whose text holds the secret.
func scrubError(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	scrubbed := scrubText(msg, secrets)
	if scrubbed == msg {
		return err
	}
	return &scrubbedError{msg: scrubbed, cause: err}
}

// scrubText replaces every occurrence of each of secrets in s with
// secretMask.
func scrubText(s string, secrets []string) string {
	for _, p := range secrets {
		if p != "" {
			s = strings.ReplaceAll(s, p, secretMask)
		}
	}
	return s
}

// scrubbedError is scrubError's error: msg is the cause's text without the
// secrets. It has no Unwrap (see scrubError).
type scrubbedError struct {
	msg   string
	cause error
}

// Error returns the cause's text without the secrets.
func (e *scrubbedError) Error() string { return e.msg }

// Is matches what the cause matches.
func (e *scrubbedError) Is(target error) bool { return errors.Is(e.cause, target) }
