package classify

import (
	"strings"
)

// tokKind is the kind of a token.
type tokKind uint8

const (
	tEOF    tokKind = iota
	tWord           // unquoted identifier or keyword
	tQuoted         // quoted identifier
	tString         // string literal
	tNumber         // numeric literal, as written
	tBlob           // x'…' literal; text holds the hex digits
	tLit            // another literal form whose value is not computed (B'…', U&'…')
	tParam          // positional placeholder
	tNamed          // named placeholder
	tVar            // MySQL user or system variable (@x, @@x)
	tOp             // operator
	tLParen
	tRParen
	tComma
	tDot
	tSemi
)

// token is one lexical token.
type token struct {
	kind tokKind
	kw   kw // tWord: the keyword, kwNone for other words
	// amb marks a token whose meaning depends on the server's settings: a
	// MySQL "…" string (an identifier under ANSI_QUOTES), a SQLite "…"
	// identifier (a string when no such column exists), a string with
	// backslash escapes. Such a token is never taken as a plain value.
	amb bool
	// text: tWord as written; tQuoted and tString unquoted and unescaped;
	// tNumber as written; tNamed the name; tOp the operator.
	text string
	// n: tParam's explicit index (?NNN, $n), 0 for "?"; after numbering,
	// its ordinal among the text's arguments.
	n int
}

// lexOpts are the lexical rules of one reading of a text.
type lexOpts struct {
	backslash    bool // backslash escapes in '…' (MySQL; Postgres with standard_conforming_strings off)
	dquoteString bool // "…" is a string (MySQL without ANSI_QUOTES)
	dquoteAmb    bool // "…" is an identifier that may be read as a string (SQLite)
	backtick     bool // `…` identifiers
	brackets     bool // […] identifiers
	hashComment  bool // # comments (MySQL)
	mysqlDash    bool // -- starts a comment only when a space or control character follows (MySQL)
	nested       bool // /* */ comments nest (Postgres)
	dollarQuote  bool // $tag$…$tag$ strings (Postgres)
	dollarParam  bool // $n placeholders
	question     bool // ? placeholders
	qnum         bool // ?NNN placeholders (SQLite)
	named        bool // :name and @name placeholders
	dollarNamed  bool // $name placeholders (SQLite)
	execComment  bool // the contents of /*! … */ are SQL (MySQL)
	eStrings     bool // E'…' strings with backslash escapes (Postgres)
	digitIdent   bool // unquoted identifiers may start with a digit (MySQL)
	atVar        bool // @x and @@x are variables (MySQL)
	uamp         bool // U&'…' and U&"…" (Postgres)
}

// lexer turns a text into tokens.
type lexer struct {
	src    string
	o      *lexOpts
	toks   []token
	bad    bool // an unterminated string, quoted identifier or comment
	inExec int  // depth of MySQL executable comments
}

// isSpace reports whether c is ASCII white space, which separates tokens.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// isDigit reports whether c is an ASCII digit.
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isIdentStart reports whether c may start an unquoted identifier. A byte of
// a non-ASCII UTF-8 character is taken as a letter, as the three dialects
// take such characters.
func isIdentStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c >= 0x80
}

// isIdentChar reports whether c may continue an unquoted identifier: "$" may
// (PostgreSQL, MySQL and SQLite accept it after the first character).
func isIdentChar(c byte) bool {
	return isIdentStart(c) || isDigit(c) || c == '$'
}

// lex appends the tokens of src to toks.
func lex(src string, o *lexOpts, toks []token) ([]token, bool) {
	if toks == nil {
		toks = make([]token, 0, len(src)/5+4)
	}
	l := lexer{src: src, o: o, toks: toks}
	l.run()
	if l.inExec > 0 {
		l.bad = true
	}
	return l.toks, !l.bad
}

// peek returns src[i], or 0 past the end.
func (l *lexer) peek(i int) byte {
	if i < len(l.src) {
		return l.src[i]
	}
	return 0
}

// emit appends a token of kind k with text, not ambiguous.
func (l *lexer) emit(k tokKind, text string) {
	l.toks = append(l.toks, token{kind: k, text: text})
}

// run lexes the whole text into l.toks, dispatching on each token's first
// characters under the reading's rules (l.o). Comments (but for the
// contents of MySQL's executable comments) and white space make no token.
// An unterminated string, identifier or comment sets l.bad.
func (l *lexer) run() {
	src, o := l.src, l.o
	i := 0
	for i < len(src) {
		c := src[i]
		next := l.peek(i + 1)
		switch {
		case isSpace(c):
			i++
		case c == '-' && next == '-' && (!o.mysqlDash || i+2 >= len(src) || src[i+2] <= ' '):
			i = lineEnd(src, i)
		case c == '#' && o.hashComment:
			i = lineEnd(src, i)
		case c == '/' && next == '*':
			if o.execComment {
				if n := execCommentStart(src, i); n > 0 {
					l.inExec++
					i = n
					continue
				}
			}
			i = l.blockComment(i)
		case c == '*' && next == '/' && l.inExec > 0:
			l.inExec--
			i += 2
		case c == '\'':
			i = l.quoted(i, '\'', tString, o.backslash)
		case c == '"':
			if o.dquoteString {
				i = l.quoted(i, '"', tString, o.backslash)
				l.toks[len(l.toks)-1].amb = true
			} else {
				i = l.quoted(i, '"', tQuoted, false)
				if o.dquoteAmb {
					l.toks[len(l.toks)-1].amb = true
				}
			}
		case c == '`' && o.backtick:
			i = l.quoted(i, '`', tQuoted, false)
		case c == '[' && o.brackets:
			j := strings.IndexByte(src[i+1:], ']')
			if j < 0 {
				l.bad = true
				l.emit(tQuoted, src[i+1:])
				i = len(src)
			} else {
				l.emit(tQuoted, src[i+1:i+1+j])
				i += j + 2
			}
		case (c == 'x' || c == 'X') && next == '\'':
			i = l.quoted(i+1, '\'', tBlob, false)
		case (c == 'e' || c == 'E') && next == '\'' && o.eStrings:
			i = l.quoted(i+1, '\'', tString, true)
		case (c == 'n' || c == 'N') && next == '\'':
			i = l.quoted(i+1, '\'', tString, o.backslash)
		case (c == 'b' || c == 'B') && next == '\'':
			i = l.quoted(i+1, '\'', tLit, false)
		case (c == 'u' || c == 'U') && next == '&' && o.uamp && (l.peek(i+2) == '\'' || l.peek(i+2) == '"'):
			if src[i+2] == '\'' {
				i = l.quoted(i+2, '\'', tLit, false)
			} else {
				i = l.quoted(i+2, '"', tQuoted, false)
				l.toks[len(l.toks)-1].amb = true // escapes not decoded
			}
		case isDigit(c) || c == '.' && isDigit(next) && !l.afterName():
			i = l.number(i)
		case isIdentStart(c):
			i = l.word(i)
		case c == '$':
			i = l.dollar(i)
		case c == '?' && o.question:
			j := i + 1
			if o.qnum {
				for j < len(src) && isDigit(src[j]) {
					j++
				}
			}
			t := token{kind: tParam}
			if j > i+1 {
				t.n = atoiCap(src[i+1 : j])
			}
			l.toks = append(l.toks, t)
			i = j
		case c == ':' && next == ':':
			l.emit(tOp, "::")
			i += 2
		case c == ':' && next == '=':
			l.emit(tOp, ":=")
			i += 2
		case (c == ':' || c == '@') && o.named && isIdentChar(next) && next != '$' && !(c == '@' && o.atVar):
			j := i + 1
			for j < len(src) && (isIdentChar(src[j])) {
				j++
			}
			if j == i+1 {
				l.emit(tOp, src[i:i+1])
				i++
				continue
			}
			l.emit(tNamed, src[i+1:j])
			i = j
		case c == '@' && o.atVar:
			i = l.variable(i)
		case c == '(':
			l.emit(tLParen, "(")
			i++
		case c == ')':
			l.emit(tRParen, ")")
			i++
		case c == ',':
			l.emit(tComma, ",")
			i++
		case c == ';':
			l.emit(tSemi, ";")
			i++
		case c == '.':
			l.emit(tDot, ".")
			i++
		default:
			i = l.operator(i)
		}
	}
}

// afterName reports whether the last token is a name, so that a "."
// qualifies it (t.1x in MySQL) rather than starting a number.
func (l *lexer) afterName() bool {
	n := len(l.toks)
	return n > 0 && (l.toks[n-1].kind == tWord || l.toks[n-1].kind == tQuoted)
}

// lineEnd returns the index after the newline that ends the line comment at
// i, or len(src).
func lineEnd(src string, i int) int {
	j := strings.IndexByte(src[i:], '\n')
	if j < 0 {
		return len(src)
	}
	return i + j + 1
}

// execCommentStart returns the index after "/*!NNNNN" or "/*M!NNNNNN"
// at i, or 0.
func execCommentStart(src string, i int) int {
	j := i + 2
	if j < len(src) && src[j] == 'M' && j+1 < len(src) && src[j+1] == '!' {
		j += 2
	} else if j < len(src) && src[j] == '!' {
		j++
	} else {
		return 0
	}
	for k := 0; k < 6 && j < len(src) && isDigit(src[j]); k++ {
		j++
	}
	return j
}

// blockComment returns the index after the /* */ comment at i. Only where
// comments nest (Postgres) does an inner "/*" open a level; elsewhere the
// first "*/" ends the comment. An unterminated comment sets l.bad.
func (l *lexer) blockComment(i int) int {
	src := l.src
	depth := 0
	for j := i; j+1 < len(src); {
		switch {
		case src[j] == '/' && src[j+1] == '*':
			if depth > 0 && !l.o.nested {
				j += 2
				continue
			}
			depth++
			j += 2
		case src[j] == '*' && src[j+1] == '/':
			depth--
			j += 2
			if depth == 0 {
				return j
			}
		default:
			j++
		}
	}
	l.bad = true
	return len(src)
}

// quoted lexes a string or quoted identifier that opens with q at src[i];
// a doubled q stands for one q, and backslash escapes when esc.
func (l *lexer) quoted(i int, q byte, k tokKind, esc bool) int {
	src := l.src
	j := i + 1
	start := j
	var b []byte // the unescaped text, once an escape has been seen
	hasBackslash := false
	for {
		if j >= len(src) {
			l.bad = true
			t := token{kind: k, text: src[start:], amb: true}
			l.toks = append(l.toks, t)
			return len(src)
		}
		c := src[j]
		if c == '\\' && esc {
			hasBackslash = true
			if b == nil {
				b = append([]byte(nil), src[start:j]...)
			}
			if j+1 < len(src) {
				b = append(b, src[j+1])
			}
			j += 2
			continue
		}
		if c == q {
			if j+1 < len(src) && src[j+1] == q {
				if b == nil {
					b = append([]byte(nil), src[start:j]...)
				}
				b = append(b, q)
				j += 2
				continue
			}
			break
		}
		if b != nil {
			b = append(b, c)
		}
		j++
	}
	t := token{kind: k, amb: hasBackslash}
	if b != nil {
		t.text = string(b)
	} else {
		t.text = src[start:j]
	}
	l.toks = append(l.toks, t)
	return j + 1
}

// number lexes a numeric literal at i. Under Postgres's rules it ends
// where PostgreSQL's syntax does (0x… 0o… 0b…, underscores between digits,
// an exponent). Elsewhere it runs over letters, digits, "." and "$": under
// MySQL's rules such a run that is not a number is a name (1abc), as is
// anything that follows a period (t.1).
func (l *lexer) number(i int) int {
	src := l.src
	j := i
	if l.o.dollarQuote { // Postgres: the number ends where its syntax does
		digits := func(hex bool) {
			isD := func(c byte) bool { return isDigit(c) || hex && isHex(c) }
			for j < len(src) {
				// An underscore only between two digits (1_000), as
				// PostgreSQL reads it: "0._x" is 0. and a name.
				if isD(src[j]) || src[j] == '_' && j > i && isD(src[j-1]) && isD(l.peek(j+1)) {
					j++
					continue
				}
				break
			}
		}
		if c := l.peek(j + 1); src[j] == '0' && strings.IndexByte("xXoObB", c) >= 0 && c != 0 && isHex(l.peek(j+2)) {
			j += 2
			digits(true)
		} else {
			digits(false)
			if l.peek(j) == '.' {
				j++
				digits(false)
			}
			if c := l.peek(j); c == 'e' || c == 'E' {
				if isDigit(l.peek(j + 1)) {
					j++
					digits(false)
				} else if s := l.peek(j + 1); (s == '+' || s == '-') && isDigit(l.peek(j+2)) {
					j += 2
					digits(false)
				}
			}
		}
		l.emit(tNumber, src[i:j])
		return j
	}
	if l.o.digitIdent && len(l.toks) > 0 && l.toks[len(l.toks)-1].kind == tDot {
		// MySQL: after a period, a name (db.0t, t.1).
		for j < len(src) && isIdentChar(src[j]) {
			j++
		}
		l.toks = append(l.toks, token{kind: tWord, text: src[i:j]})
		return j
	}
	for j < len(src) {
		c := src[j]
		if isDigit(c) || c == '.' || isIdentStart(c) {
			if (c == 'e' || c == 'E') && j+2 < len(src) && (src[j+1] == '+' || src[j+1] == '-') && isDigit(src[j+2]) && j > i && isDigit(src[j-1]) {
				j += 2
				continue
			}
			j++
			continue
		}
		if c == '$' {
			j++
			continue
		}
		break
	}
	text := src[i:j]
	if l.o.digitIdent && !isNumber(text) && strings.IndexByte(text, '.') < 0 {
		l.toks = append(l.toks, token{kind: tWord, text: text})
		return j
	}
	l.emit(tNumber, text)
	return j
}

// isNumber reports whether s is a decimal, float or 0x/0b number.
func isNumber(s string) bool {
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		for _, c := range []byte(s[2:]) {
			if !isHex(c) {
				return false
			}
		}
		return true
	}
	if len(s) > 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B') {
		for _, c := range []byte(s[2:]) {
			if c != '0' && c != '1' {
				return false
			}
		}
		return true
	}
	seenE := false
	for k := 0; k < len(s); k++ {
		c := s[k]
		switch {
		case isDigit(c) || c == '.':
		case (c == 'e' || c == 'E') && !seenE && k > 0:
			seenE = true
			if k+1 < len(s) && (s[k+1] == '+' || s[k+1] == '-') {
				k++
			}
			if k+1 >= len(s) {
				return false // 1e: no exponent digits
			}
		default:
			return false
		}
	}
	return true
}

// isHex reports whether c is a hexadecimal digit.
func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// word lexes an unquoted word at i, a keyword unless it follows a period.
func (l *lexer) word(i int) int {
	src := l.src
	j := i + 1
	for j < len(src) && isIdentChar(src[j]) {
		j++
	}
	text := src[i:j]
	k := lookupKeyword(text)
	if n := len(l.toks); n > 0 && l.toks[n-1].kind == tDot {
		k = kwNone // after a period a word is a name: db.set, t.update
	}
	l.toks = append(l.toks, token{kind: tWord, kw: k, text: text})
	return j
}

// dollar lexes what starts with "$" at i, by the reading's rules in turn: a
// $n placeholder ($0 numbered -1, which no argument matches), a
// $tag$…$tag$ string (Postgres), a $name placeholder (SQLite), an
// identifier (MySQL), else the operator "$".
func (l *lexer) dollar(i int) int {
	src, o := l.src, l.o
	next := l.peek(i + 1)
	if o.dollarParam && isDigit(next) {
		j := i + 1
		for j < len(src) && isDigit(src[j]) {
			j++
		}
		n := atoiCap(src[i+1 : j])
		if n == 0 {
			n = -1 // $0 is not a parameter any driver binds
		}
		l.toks = append(l.toks, token{kind: tParam, n: n})
		return j
	}
	if o.dollarQuote {
		j := i + 1
		for j < len(src) && isIdentChar(src[j]) && src[j] != '$' {
			j++
		}
		if j < len(src) && src[j] == '$' && (j == i+1 || !isDigit(src[i+1])) {
			tag := src[i : j+1]
			body := j + 1
			k := strings.Index(src[body:], tag)
			if k < 0 {
				l.bad = true
				l.toks = append(l.toks, token{kind: tString, text: src[body:], amb: true})
				return len(src)
			}
			l.emit(tString, src[body:body+k])
			return body + k + len(tag)
		}
	}
	if o.dollarNamed && isIdentChar(next) && next != '$' {
		j := i + 1
		for j < len(src) && isIdentChar(src[j]) {
			j++
		}
		l.emit(tNamed, src[i+1:j])
		return j
	}
	if o.digitIdent { // MySQL: $ may start an identifier
		j := i + 1
		for j < len(src) && isIdentChar(src[j]) {
			j++
		}
		l.toks = append(l.toks, token{kind: tWord, text: src[i:j]})
		return j
	}
	l.emit(tOp, "$")
	return i + 1
}

// variable lexes a MySQL @x, @@x, @@session.x, @'x', @"x" or @`x`.
func (l *lexer) variable(i int) int {
	src := l.src
	j := i + 1
	if j < len(src) && src[j] == '@' {
		j++
	}
	if j < len(src) && (src[j] == '\'' || src[j] == '"' || src[j] == '`') {
		n := len(l.toks)
		j = l.quoted(j, src[j], tQuoted, src[j] != '`' && l.o.backslash)
		text := l.toks[n].text
		l.toks = l.toks[:n]
		l.toks = append(l.toks, token{kind: tVar, text: text})
		return j
	}
	start := j
	for j < len(src) && (isIdentChar(src[j]) || src[j] == '.') {
		j++
	}
	l.toks = append(l.toks, token{kind: tVar, text: src[start:j]})
	return j
}

// ops3 and ops2 are the operators of three and two characters, tried
// longest first.
var ops3 = [...]string{"<=>", "->>", "#>>"}
var ops2 = [...]string{"<=", ">=", "<>", "!=", "==", "||", "&&", "->", "=>", "#>", "@>", "<@", "?|", "?&", "<<", ">>"}

// operator lexes the operator at i, longest first. "?|" and "?&" are not
// operators where "?" is a placeholder, nor "#>" where "#" starts a comment.
func (l *lexer) operator(i int) int {
	src := l.src
	for _, op := range ops3 {
		if strings.HasPrefix(src[i:], op) {
			l.emit(tOp, op)
			return i + 3
		}
	}
	for _, op := range ops2 {
		if strings.HasPrefix(src[i:], op) {
			if op[0] == '?' && l.o.question {
				break
			}
			if op[0] == '#' && l.o.hashComment {
				break
			}
			l.emit(tOp, op)
			return i + 2
		}
	}
	l.emit(tOp, src[i:i+1])
	return i + 1
}

// atoiCap parses a run of digits, saturating at a large value.
func atoiCap(s string) int {
	n := 0
	for _, c := range []byte(s) {
		if n > 1<<24 {
			return 1 << 24
		}
		n = n*10 + int(c-'0')
	}
	return n
}

var keywords = func() map[string]kw {
	m := make(map[string]kw, kwCount)
	for k, s := range kwText {
		if s != "" {
			m[s] = kw(k)
		}
	}
	return m
}()

// lookupKeyword returns the keyword that word spells in any case.
func lookupKeyword(word string) kw {
	if len(word) > 20 {
		return kwNone
	}
	var buf [20]byte
	for i := 0; i < len(word); i++ {
		c := word[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	return keywords[string(buf[:len(word)])]
}
