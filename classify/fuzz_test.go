package classify

import (
	"reflect"
	"strings"
	"testing"
)

// The fuzz test checks Classify against refScan, a deliberately naive and
// independent scanner: it drops comments and strings, then takes the
// names that follow UPDATE, INSERT [INTO], REPLACE [INTO], DELETE FROM,
// MySQL's DELETE t1, t2 FROM, TRUNCATE [TABLE], ALTER TABLE and DROP
// TABLE. Classify must report each of them as written or changed, or
// widen to the whole database.

// refTok is a token of the reference scanner: a word (kw is its upper
// case), a quoted name, or punctuation; strings become "'".
type refTok struct {
	text string
	kw   string
	name bool // an identifier: a word or a quoted name
}

// refLex splits sql into reference tokens under d's usual rules.
func refLex(d Dialect, sql string) (toks []refTok, bound int) {
	i := 0
	n := len(sql)
	at := func(k int) byte {
		if k < n {
			return sql[k]
		}
		return 0
	}
	skipQuoted := func(q byte, bs bool) string {
		var b strings.Builder
		i++
		for i < n {
			c := sql[i]
			if bs && c == '\\' {
				// Kept as written: under ANSI_QUOTES a "…" is a name, in
				// which a backslash is a character like any other.
				b.WriteByte(c)
				if i+1 < n {
					b.WriteByte(sql[i+1])
				}
				i += 2
				continue
			}
			if c == q {
				if at(i+1) == q {
					b.WriteByte(q)
					i += 2
					continue
				}
				i++
				return b.String()
			}
			b.WriteByte(c)
			i++
		}
		return b.String()
	}
	wordChar := func(c byte) bool {
		return c == '_' || c == '$' || c >= 0x80 || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
	}
	digits := func() int {
		v := 0
		for i < n && '0' <= sql[i] && sql[i] <= '9' {
			if v < 1<<24 {
				v = v*10 + int(sql[i]-'0')
			}
			i++
		}
		return v
	}
	for i < n {
		c := sql[i]
		switch {
		case c == '-' && at(i+1) == '-' && (d != MySQL || at(i+2) <= ' '):
			for i < n && sql[i] != '\n' {
				i++
			}
		case c == '#' && d == MySQL:
			for i < n && sql[i] != '\n' {
				i++
			}
		case c == '/' && at(i+1) == '*':
			if d == MySQL && (at(i+2) == '!' || at(i+2) == 'M' && at(i+3) == '!') {
				i += 3
				if sql[i-1] == 'M' {
					i++
				}
				for k := 0; k < 6 && i < n && '0' <= sql[i] && sql[i] <= '9'; k++ {
					i++
				}
				continue
			}
			depth := 0
			for i < n {
				if sql[i] == '/' && at(i+1) == '*' && (d == Postgres || depth == 0) {
					depth++
					i += 2
				} else if sql[i] == '*' && at(i+1) == '/' {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		case c == '*' && at(i+1) == '/' && d == MySQL:
			i += 2
		case c == '\'':
			skipQuoted('\'', d == MySQL)
			toks = append(toks, refTok{text: "'"})
		case (c == 'e' || c == 'E') && at(i+1) == '\'' && d == Postgres:
			i++
			skipQuoted('\'', true)
			toks = append(toks, refTok{text: "'"})
		case c == '"':
			// A MySQL "…" is a string, or a name under ANSI_QUOTES.
			toks = append(toks, refTok{text: skipQuoted('"', d == MySQL), name: true})
		case c == '`' && d != Postgres:
			toks = append(toks, refTok{text: skipQuoted('`', false), name: true})
		case c == '[' && (d == SQLite || d == Generic):
			j := strings.IndexByte(sql[i:], ']')
			if j < 0 {
				toks = append(toks, refTok{text: sql[i+1:], name: true})
				i = n
				continue
			}
			toks = append(toks, refTok{text: sql[i+1 : i+j], name: true})
			i += j + 1
		case c == '$' && d == Postgres && !('0' <= at(i+1) && at(i+1) <= '9'):
			j := i + 1
			for j < n && wordChar(sql[j]) && sql[j] != '$' {
				j++
			}
			if at(j) != '$' {
				i++
				toks = append(toks, refTok{text: "$"})
				continue
			}
			tag := sql[i : j+1]
			k := strings.Index(sql[j+1:], tag)
			if k < 0 {
				i = n
			} else {
				i = j + 1 + k + len(tag)
			}
			toks = append(toks, refTok{text: "'"})
		case c == '$' && (d == Postgres || d == Generic) && '0' <= at(i+1) && at(i+1) <= '9':
			i++
			bound += digits()
			toks = append(toks, refTok{text: "?"})
		case c == '?' && d != Postgres:
			i++
			if v := digits(); v > 0 {
				bound += v
			} else {
				bound++
			}
			toks = append(toks, refTok{text: "?"})
		case (c == ':' || c == '@' || c == '$' && d == SQLite) && (d == SQLite || d == Generic) && wordChar(at(i+1)) && at(i+1) != '$':
			i++
			for i < n && wordChar(sql[i]) {
				i++
			}
			bound++
			toks = append(toks, refTok{text: "?"})
		case c == '@' && d == MySQL: // a variable: @x, @@x, @@session.x
			i++
			for i < n && (wordChar(sql[i]) || sql[i] == '@' || sql[i] == '.') {
				i++
			}
			toks = append(toks, refTok{text: "@"})
		case wordChar(c) && (c != '$' || d == MySQL):
			j := i
			num := '0' <= c && c <= '9' && d != MySQL
			isDig := func(c byte) bool { return '0' <= c && c <= '9' || c == '_' }
			switch {
			case num && c == '0' && at(i+1) != 0 && strings.IndexByte("xXoObB", at(i+1)) >= 0:
				// 0x1F, 0o7, 0b1: '$' ends them.
				j += 2
				for j < n && strings.IndexByte("0123456789abcdefABCDEF_", sql[j]) >= 0 {
					j++
				}
			case num:
				// digits[.digits][e[+-]digits]; a name glued to it (0A$$)
				// goes on through '$', as the name would.
				for j < n && isDig(sql[j]) {
					j++
				}
				if at(j) == '.' {
					j++
					for j < n && isDig(sql[j]) {
						j++
					}
				}
				if (at(j) == 'e' || at(j) == 'E') && ('0' <= at(j+1) && at(j+1) <= '9' || (at(j+1) == '+' || at(j+1) == '-') && '0' <= at(j+2) && at(j+2) <= '9') {
					j += 2
					for j < n && isDig(sql[j]) {
						j++
					}
				}
				if j < n && wordChar(sql[j]) && sql[j] != '$' {
					for j < n && wordChar(sql[j]) {
						j++
					}
				}
			default:
				for j < n && wordChar(sql[j]) {
					j++
				}
			}
			w := sql[i:j]
			i = j
			digit := '0' <= w[0] && w[0] <= '9'
			if d == MySQL { // may start with a digit, but not be a number, unless after a "."
				digit = strings.Trim(w, "0123456789") == "" && !(len(toks) > 0 && isDot(toks[len(toks)-1]))
			}
			toks = append(toks, refTok{text: w, kw: strings.ToUpper(w), name: !digit})
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		default:
			toks = append(toks, refTok{text: sql[i : i+1]})
			i++
		}
	}
	return toks, bound
}

// refStop are words that the reference never takes as a table name.
var refStop = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`SET ON OF FROM INTO TABLE VALUES VALUE SELECT DEFAULT WHERE CASCADE RESTRICT NO
		NOWAIT SKIP WAIT LIMIT OFFSET FOR CURRENT_TIMESTAMP NOW NULL ONLY IF OR AND USING JOIN AS WITH
		RETURNING LOW_PRIORITY DELAYED HIGH_PRIORITY IGNORE QUICK INSERT UPDATE DELETE REPLACE OVERRIDING
		ORDER GROUP BY WHEN THEN ELSE END CASE NOT EXISTS IN IS LIKE KEY DUPLICATE CONFLICT DO
		NOTHING ROW ROWS EACH BEGIN COMMIT ROLLBACK TO ALL ANY SOME UNION EXCEPT INTERSECT
		INNER LEFT RIGHT FULL CROSS NATURAL STRAIGHT_JOIN OUTER LATERAL`) {
		refStop[w] = true
	}
}

// refScan returns the tables the naive scan finds in write positions.
func refScan(d Dialect, sql string) []string {
	all, _ := refLex(d, sql)
	var out []string
	// Statements split at every ";"; EXPLAIN without ANALYZE and
	// PREPARE do not run their statement.
	for len(all) > 0 {
		end := 0
		for end < len(all) && (all[end].text != ";" || all[end].name) {
			end++
		}
		seg := all[:end]
		if end < len(all) {
			all = all[end+1:]
		} else {
			all = nil
		}
		if len(seg) > 0 {
			switch seg[0].kw {
			case "EXPLAIN", "DESCRIBE", "DESC":
				analyze := false
				for _, t := range seg {
					analyze = analyze || t.kw == "ANALYZE" || t.kw == "ANALYSE"
				}
				if !analyze || d == SQLite {
					continue
				}
			case "PREPARE":
				continue
			}
		}
		out = append(out, refSegment(seg)...)
	}
	return out
}

func isDot(t refTok) bool { return t.text == "." && !t.name }

func refSegment(toks []refTok) []string {
	var out []string
	kwAt := func(i int) string {
		if i >= 0 && i < len(toks) {
			return toks[i].kw
		}
		return ""
	}
	// names takes name[.name] [AS alias | alias] [, …] at i.
	names := func(i int, list bool) {
		for i < len(toks) && toks[i].name && !refStop[toks[i].kw] {
			name := toks[i].text
			i++
			for i+1 < len(toks) && isDot(toks[i]) && toks[i+1].name {
				name = toks[i+1].text
				i += 2
			}
			out = append(out, name)
			if !list {
				return
			}
			if i+1 < len(toks) && isDot(toks[i]) && toks[i+1].text == "*" { // t.*
				i += 2
			}
			if kwAt(i) == "AS" {
				i += 2
			} else if i < len(toks) && toks[i].name && !refStop[toks[i].kw] {
				i++
			}
			if i >= len(toks) || toks[i].text != "," || toks[i].name {
				return
			}
			i++
		}
	}
	skip := func(i int, mods ...string) int {
		for i < len(toks) {
			k := toks[i].kw
			found := false
			for _, m := range mods {
				if k == m {
					found = true
				}
			}
			if !found {
				return i
			}
			if k == "OR" {
				i++
			}
			i++
		}
		return i
	}
	for i, t := range toks {
		prev := kwAt(i - 1)
		if i > 0 && isDot(toks[i-1]) {
			continue
		}
		switch t.kw {
		case "UPDATE":
			if prev == "FOR" || prev == "KEY" || prev == "ON" || prev == "DO" || prev == "THEN" {
				continue
			}
			names(skip(i+1, "LOW_PRIORITY", "IGNORE", "ONLY", "OR"), true)
		case "INSERT":
			if prev == "THEN" {
				continue
			}
			j := skip(i+1, "OR", "IGNORE", "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY")
			if kwAt(j) == "INTO" {
				j++
			}
			names(j, false)
		case "REPLACE":
			if prev == "OR" || i+1 < len(toks) && toks[i+1].text == "(" {
				continue
			}
			j := skip(i+1, "LOW_PRIORITY", "DELAYED")
			if kwAt(j) == "INTO" {
				j++
			}
			names(j, false)
		case "DELETE":
			if prev == "ON" || prev == "THEN" {
				continue
			}
			j := skip(i+1, "LOW_PRIORITY", "QUICK", "IGNORE")
			if kwAt(j) == "FROM" {
				names(j+1, true)
				continue
			}
			// DELETE t1[.*], t2 FROM
			k := j
			for k < len(toks) && (toks[k].name && !refStop[toks[k].kw] || toks[k].text == "," || isDot(toks[k]) || toks[k].text == "*") {
				k++
			}
			if k > j && kwAt(k) == "FROM" {
				names(j, true)
			}
		case "TRUNCATE":
			if i+1 < len(toks) && toks[i+1].text == "(" {
				continue
			}
			j := i + 1
			if kwAt(j) == "TABLE" {
				j++
			}
			names(j, true)
		case "ALTER", "DROP":
			if kwAt(i+1) != "TABLE" {
				continue
			}
			j := i + 2
			if kwAt(j) == "IF" && kwAt(j+1) == "EXISTS" {
				j += 2
			} else if kwAt(j) == "IF" && kwAt(j+1) == "NOT" && kwAt(j+2) == "EXISTS" {
				j += 3
			}
			names(j, t.kw == "DROP")
		}
	}
	return out
}

// checkClassify verifies the properties the fuzz test holds Classify to.
func checkClassify(t *testing.T, d Dialect, sql string) {
	t.Helper()
	s := Classify(d, sql)
	if s2 := Classify(d, sql); s2 != s && !reflect.DeepEqual(s, s2) {
		t.Fatalf("Classify(%v, %q) not stable: %v then %v", d, sql, s, s2)
	}
	if fresh := classifyText(d, sql); !reflect.DeepEqual(s, fresh) {
		t.Fatalf("Classify(%v, %q): cached %v; fresh %v", d, sql, s, fresh)
	}
	_ = s.String()
	if _, bound := refLex(d, sql); s.Args > bound {
		t.Fatalf("Classify(%v, %q).Args = %d; more than the %d placeholders", d, sql, s.Args, bound)
	}
	if s.WholeDB {
		return
	}
	for _, c := range s.Schema {
		if c.Table.Table == "" {
			return // flush of the whole database
		}
	}
	for _, name := range refScan(d, sql) {
		found := false
		for _, w := range s.Writes {
			found = found || strings.EqualFold(w.Table.Table, name)
		}
		for _, c := range s.Schema {
			found = found || strings.EqualFold(c.Table.Table, name)
		}
		if !found {
			t.Fatalf("Classify(%v, %q) = %v: misses table %q", d, sql, s, name)
		}
	}
}

func FuzzClassify(f *testing.F) {
	for _, c := range corpus {
		f.Add(uint8(c.d), c.sql)
	}
	f.Fuzz(func(t *testing.T, d uint8, sql string) {
		checkClassify(t, Dialect(d%uint8(numDialects)), sql)
	})
}

// TestReference checks the corpus against the reference scanner, and the
// reference scanner against a few texts.
func TestReference(t *testing.T) {
	for _, c := range corpus {
		checkClassify(t, c.d, c.sql)
	}
	for _, c := range []struct {
		d    Dialect
		sql  string
		want string
	}{
		{SQLite, "UPDATE a SET x = 1; DELETE FROM b; INSERT INTO c VALUES (1)", "a b c"},
		{MySQL, "UPDATE t1, t2 AS x SET a = 1", "t1 t2"},
		{MySQL, "DELETE t1, t2 FROM t1 JOIN t2", "t1 t2"},
		{MySQL, "DROP TABLE IF EXISTS a, b", "a b"},
		{Postgres, "SELECT $$UPDATE a SET$$, 'DELETE FROM b' -- INSERT INTO c", ""},
		{Postgres, "EXPLAIN UPDATE a SET x = 1", ""},
		{Postgres, "EXPLAIN ANALYZE UPDATE a SET x = 1", "a"},
		{MySQL, "SELECT 1 FROM t FOR UPDATE", ""},
	} {
		if got := strings.Join(refScan(c.d, c.sql), " "); got != c.want {
			t.Errorf("refScan(%v, %q) = %q; want %q", c.d, c.sql, got, c.want)
		}
	}
}
