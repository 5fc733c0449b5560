package classify

import (
	"encoding/hex"
	"strconv"
	"strings"
)

// maxDepth bounds the nesting of parentheses and statements the parser
// follows; deeper text widens to the whole database.
const maxDepth = 100

// parser classifies the tokens of one reading of a text into st.
//
// Every token of a statement is either consumed by the structural parse
// of that statement or passed to scan, which widens to the whole database
// on any keyword that could start a write in a place the parser does not
// explain. That is what keeps classification from under-reporting on text
// it only partly understands.
type parser struct {
	d     Dialect
	toks  []token
	match []int // '(' → index of its ')', ')' → index of its '('; -1 when unmatched
	st    *Statement
	body  bool // inside a compound statement's body: no transaction control
	depth int
}

// span is one statement: toks[lo:hi], and whether it lies inside the body
// of a compound statement (CREATE TRIGGER … BEGIN … END).
type span struct {
	lo, hi int
	body   bool
}

// kw returns the keyword at i, or kwNone past hi or for other tokens.
func (p *parser) kw(i, hi int) kw {
	if i < hi && p.toks[i].kind == tWord {
		return p.toks[i].kw
	}
	return kwNone
}

// is reports whether the token at i, below hi, is of kind k.
func (p *parser) is(i, hi int, k tokKind) bool { return i < hi && p.toks[i].kind == k }

// isOp reports whether the token at i, below hi, is the operator op.
func (p *parser) isOp(i, hi int, op string) bool {
	return i < hi && p.toks[i].kind == tOp && p.toks[i].text == op
}

// isEq reports whether the token at i is the equality operator.
func (p *parser) isEq(i, hi int) bool {
	if i >= hi || p.toks[i].kind != tOp {
		return false
	}
	switch p.toks[i].text {
	case "=":
		return true
	case "==":
		return p.d == SQLite || p.d == Generic
	}
	return false
}

// close returns the index just past the group that opens at i.
func (p *parser) close(i, hi int) int {
	if m := p.match[i]; m > i && m < hi {
		return m + 1
	}
	return hi
}

// find returns the index of the first token in [i, hi) at nesting depth 0
// that is one of the keywords ks, or hi.
func (p *parser) find(i, hi int, ks ...kw) int {
	for ; i < hi; i++ {
		t := &p.toks[i]
		if t.kind == tLParen {
			i = p.close(i, hi) - 1
			continue
		}
		if t.kind == tWord && t.kw != kwNone {
			for _, k := range ks {
				if t.kw == k {
					return i
				}
			}
		}
	}
	return hi
}

// findPair returns the index of the first a b (two keywords in a row) at
// depth 0 in [i, hi), or hi.
func (p *parser) findPair(i, hi int, a, b kw) int {
	for ; i < hi; i++ {
		i = p.find(i, hi, a)
		if i < hi && p.kw(i+1, hi) == b {
			return i
		}
	}
	return hi
}

// wholeDB marks the statement as one whose effects cannot be bounded: it
// may change anything in the database.
func (p *parser) wholeDB() { p.st.WholeDB = true }

// addWrite adds w to the statement's writes and returns its index, by
// which the caller completes it (its keys, its columns): an index, not a
// pointer, since later writes may move the slice.
func (p *parser) addWrite(w Write) int {
	p.st.Writes = append(p.st.Writes, w)
	return len(p.st.Writes) - 1
}

// addSchema records a schema change of table n.
func (p *parser) addSchema(n Name) {
	p.st.Schema = append(p.st.Schema, SchemaChange{Table: n})
}

// addTx records transaction control, except inside a compound statement's
// body, where BEGIN, COMMIT and the like are not the connection's
// transaction control (a trigger's BEGIN … END).
func (p *parser) addTx(k TxKind, name string) {
	if p.body {
		return
	}
	p.st.Tx = append(p.st.Tx, TxOp{Kind: k, Name: name})
}

// addAutocommit reports MySQL's SET autocommit = 0 (Begin) or = 1 (Commit).
func (p *parser) addAutocommit(k TxKind) {
	if p.body {
		return
	}
	p.st.Tx = append(p.st.Tx, TxOp{Kind: k, Autocommit: true})
}

// fold returns the identifier token's name as the dialect stores it.
func (p *parser) fold(t *token) string {
	if t.kind == tWord && p.d == Postgres {
		return lowerASCII(t.text)
	}
	return t.text
}

// lowerASCII lower-cases the ASCII letters of s, as PostgreSQL folds an
// unquoted name (other bytes are kept); s itself, without allocating, when
// it has no upper-case letter.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// isIdent reports whether the token at i can be an identifier (a name
// part): a word, a quoted identifier, and where a dialect reads one as a
// name, a string.
func (p *parser) isIdent(i, hi int) bool {
	if i >= hi {
		return false
	}
	switch t := &p.toks[i]; t.kind {
	case tWord, tQuoted:
		return true
	case tString:
		// SQLite takes a string where only a name can stand; a MySQL "…"
		// is a name under ANSI_QUOTES.
		return p.d == SQLite || p.d == Generic || t.amb && p.d == MySQL
	}
	return false
}

// name parses a possibly qualified name at i: a, s.a or c.s.a. A word
// that starts a statement is not taken as a name (Postgres would allow
// some unquoted; they widen instead).
func (p *parser) name(i, hi int) (Name, int, bool) {
	if !p.isIdent(i, hi) {
		return Name{}, i, false
	}
	switch p.toks[i].kw {
	case kwSELECT, kwINSERT, kwUPDATE, kwDELETE, kwREPLACE, kwMERGE, kwTRUNCATE, kwALTER, kwDROP,
		kwCREATE, kwWITH, kwVALUES, kwSET, kwWHERE, kwFROM, kwINTO, kwTABLE, kwON:
		return Name{}, i, false
	}
	parts := [3]string{p.fold(&p.toks[i])}
	n := 1
	j := i + 1
	for n < 3 && p.is(j, hi, tDot) && p.isIdent(j+1, hi) {
		parts[n] = p.fold(&p.toks[j+1])
		n++
		j += 2
	}
	if p.is(j, hi, tDot) && p.isIdent(j+1, hi) { // a.b.c.d: not a usable name
		return Name{}, i, false
	}
	for _, part := range parts[:n] {
		if part == "" { // "", ``, a..b: not a usable name
			return Name{}, i, false
		}
	}
	if n == 1 {
		return Name{Table: parts[0]}, j, true
	}
	return Name{Schema: parts[n-2], Table: parts[n-1]}, j, true
}

// colRef parses a column reference: col, q.col, s.q.col. qual is the
// qualifier ("" if none), qs its schema.
func (p *parser) colRef(i, hi int) (col, qual, qs string, j int, ok bool) {
	if !p.isIdent(i, hi) || p.toks[i].kind == tWord && isExprWord(p.toks[i].kw) {
		return "", "", "", i, false
	}
	var parts [3]string
	n := 0
	j = i
	for {
		parts[n] = p.fold(&p.toks[j])
		n++
		j++
		if n < 3 && p.is(j, hi, tDot) && p.isIdent(j+1, hi) {
			j++
			continue
		}
		break
	}
	if p.is(j, hi, tDot) { // a.b.c.d or a.*
		return "", "", "", i, false
	}
	switch n {
	case 1:
		return parts[0], "", "", j, true
	case 2:
		return parts[1], parts[0], "", j, true
	}
	return parts[2], parts[1], parts[0], j, true
}

// isExprWord reports whether a keyword cannot be a column name in an
// equality conjunct.
func isExprWord(k kw) bool {
	switch k {
	case kwNULL, kwTRUE, kwFALSE, kwNOT, kwCASE, kwEXISTS, kwSELECT, kwDEFAULT, kwROW, kwARRAY, kwANY, kwALL, kwUNKNOWN, kwCURRENT:
		return true
	}
	return false
}

// value parses a plain value at i: a literal, a placeholder, or a
// placeholder with a cast. ok is false for anything else.
func (p *parser) value(i, hi int) (Value, int, bool) {
	if i >= hi {
		return Value{}, i, false
	}
	t := &p.toks[i]
	switch t.kind {
	case tOp:
		if (t.text == "-" || t.text == "+") && p.is(i+1, hi, tNumber) {
			v, ok := p.number(p.toks[i+1].text, t.text == "-")
			return v, i + 2, ok
		}
	case tNumber:
		v, ok := p.number(t.text, false)
		return v, i + 1, ok
	case tString:
		if t.amb {
			return Value{}, i, false
		}
		return Value{Literal: t.text}, i + 1, true
	case tBlob:
		if t.amb {
			return Value{}, i, false
		}
		b, err := hex.DecodeString(t.text)
		if err != nil {
			return Value{}, i, false
		}
		return Value{Literal: b}, i + 1, true
	case tWord:
		switch t.kw {
		case kwNULL:
			return Value{}, i + 1, true
		case kwTRUE:
			return Value{Literal: true}, i + 1, true
		case kwFALSE:
			return Value{Literal: false}, i + 1, true
		}
	case tParam:
		// $0 (numbered -1) is no argument.
		if t.n <= 0 {
			return Value{}, i, false
		}
		return Value{Arg: t.n}, p.cast(i+1, hi), true
	case tNamed:
		return Value{Named: t.text}, p.cast(i+1, hi), true
	}
	return Value{}, i, false
}

// cast skips a ::type after a placeholder.
func (p *parser) cast(i, hi int) int {
	if !p.isOp(i, hi, "::") || !p.isIdent(i+1, hi) {
		return i
	}
	i += 2
	for p.is(i, hi, tDot) && p.isIdent(i+1, hi) {
		i += 2
	}
	if p.is(i, hi, tLParen) {
		i = p.close(i, hi)
	}
	return i
}

// number converts a numeric literal; ok is false for forms whose value
// the dialect may read otherwise (MySQL 0x… is a string in a string
// context) or that do not fit.
func (p *parser) number(s string, neg bool) (Value, bool) {
	if neg {
		s = "-" + s
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return Value{Literal: n}, true
	}
	u := strings.TrimPrefix(s, "-")
	if len(u) > 2 && u[0] == '0' && (u[1] == 'x' || u[1] == 'X') {
		if p.d != SQLite {
			return Value{}, false
		}
		n, err := strconv.ParseUint(u[2:], 16, 64)
		if err != nil {
			return Value{}, false
		}
		v := int64(n)
		if neg {
			v = -v
		}
		return Value{Literal: v}, true
	}
	for _, c := range []byte(u) {
		if !isDigit(c) && c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-' {
			return Value{}, false
		}
	}
	if !strings.ContainsAny(u, ".eE") {
		return Value{}, false // an integer too large for int64
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return Value{}, false
	}
	return Value{Literal: f}, true
}

// exprValue returns the plain value that is the whole of [i, hi), or an
// Expr value.
func (p *parser) exprValue(i, hi int) Value {
	if v, j, ok := p.value(i, hi); ok && j == hi {
		return v
	}
	return Value{Expr: true}
}

// startsStatement reports whether the token at i opens a statement inside
// parentheses (a subquery, or a data-modifying statement).
func (p *parser) startsStatement(i, hi int) bool {
	switch p.kw(i, hi) {
	case kwSELECT, kwWITH, kwVALUES, kwTABLE, kwINSERT, kwUPDATE, kwDELETE, kwMERGE:
		return true
	case kwREPLACE:
		return !p.is(i+1, hi, tLParen)
	}
	return false
}

// scan modes.
const (
	scanQuery = 1 << iota // a query: locking clauses, SELECT … INTO
	scanMerge             // MERGE: THEN UPDATE/DELETE/INSERT
	scanDDL               // DDL: REFERENCES t
)

// scan walks [lo, hi), classifying subqueries, and widens to the whole
// database on any keyword that could start a write where it is not
// explained.
func (p *parser) scan(lo, hi int, mode int) {
	if p.depth > maxDepth {
		p.wholeDB()
		return
	}
	p.depth++
	defer func() { p.depth-- }()
	for i := lo; i < hi; i++ {
		t := &p.toks[i]
		switch t.kind {
		case tLParen:
			end := p.close(i, hi) - 1
			// Inside parentheses, FOR and INTO are not the query's own
			// locking clause or SELECT … INTO: scanQuery does not apply.
			if p.startsStatement(i+1, end) {
				p.stmt(i+1, end)
			} else {
				p.scan(i+1, end, mode&^scanQuery)
			}
			i = end
			continue
		case tWord:
		default:
			continue
		}
		switch t.kw {
		case kwFOR:
			if mode&scanQuery != 0 {
				i = p.lockingClause(i, hi) - 1
			}
		case kwLOCK: // LOCK IN SHARE MODE
			if mode&scanQuery != 0 && p.kw(i+1, hi) == kwIN && p.kw(i+2, hi) == kwSHARE && p.kw(i+3, hi) == kwMODE {
				p.st.Locking = true
				i += 3
			}
		case kwINTO:
			if mode&scanQuery != 0 && (p.d == Postgres || p.d == Generic) {
				i = p.selectInto(i+1, hi) - 1
			}
		case kwREFERENCES:
			if mode&scanDDL != 0 {
				if n, j, ok := p.name(i+1, hi); ok {
					p.addSchema(n)
					i = j - 1
				}
			}
		default:
			if p.dangerous(i, lo, hi, mode) {
				p.wholeDB()
			}
		}
	}
}

// dangerous reports whether the keyword at i could start a write that the
// enclosing parse does not account for.
func (p *parser) dangerous(i, lo, hi int, mode int) bool {
	t := &p.toks[i]
	prev := kwNone
	if i > lo {
		if p.toks[i-1].kind == tDot {
			return false // a qualified column: t.update
		}
		prev = p.kw(i-1, hi)
	}
	next := p.kw(i+1, hi)
	fn := p.is(i+1, hi, tLParen)
	switch t.kw {
	case kwUPDATE, kwDELETE:
		if prev == kwON {
			return false // ON UPDATE / ON DELETE actions
		}
		if t.kw == kwUPDATE && prev == kwFOR && mode&scanQuery != 0 {
			return false
		}
		if prev == kwTHEN && mode&scanMerge != 0 {
			return false
		}
		return true
	case kwINSERT:
		if fn && next == kwNone && p.d != Postgres { // MySQL INSERT(str, pos, len, new)
			return false
		}
		if prev == kwTHEN && mode&scanMerge != 0 {
			return false
		}
		return true
	case kwREPLACE:
		if fn {
			return false // replace(str, from, to)
		}
		if mode&scanDDL != 0 && (next == kwSELECT || next == kwAS || next == kwWITH) {
			return false // MySQL CREATE TABLE … REPLACE SELECT
		}
		if prev == kwOR {
			return false // CREATE OR REPLACE
		}
		return true
	case kwTRUNCATE:
		return !fn
	case kwALTER, kwDROP:
		if mode&scanDDL != 0 && next != kwTABLE {
			return false // ALTER COLUMN, DROP CONSTRAINT
		}
		return true
	case kwMERGE, kwCREATE, kwRENAME, kwCALL, kwEXEC, kwEXECUTE, kwCOPY, kwLOAD, kwGRANT, kwREVOKE, kwATTACH, kwDETACH, kwPRAGMA, kwIMPORT, kwREFRESH:
		if t.kw == kwEXECUTE && (prev == kwFUNCTION || prev == kwPROCEDURE || mode&scanDDL != 0) {
			return false // CREATE TRIGGER … EXECUTE FUNCTION f()
		}
		if t.kw == kwRENAME && mode&scanDDL != 0 {
			return false
		}
		return true
	}
	return false
}

// lockingClause parses FOR UPDATE / FOR NO KEY UPDATE / FOR SHARE / FOR
// KEY SHARE [OF t, …] [NOWAIT | SKIP LOCKED | WAIT n] at i, and returns
// the index after it (i+1 if it is not one).
func (p *parser) lockingClause(i, hi int) int {
	j := i + 1
	switch p.kw(j, hi) {
	case kwUPDATE, kwSHARE:
		j++
	case kwNO:
		if p.kw(j+1, hi) != kwKEY || p.kw(j+2, hi) != kwUPDATE {
			return i + 1
		}
		j += 3
	case kwKEY:
		if p.kw(j+1, hi) != kwSHARE {
			return i + 1
		}
		j += 2
	default:
		return i + 1
	}
	p.st.Locking = true
	if p.kw(j, hi) == kwOF {
		j++
		for {
			_, k, ok := p.name(j, hi)
			if !ok {
				break
			}
			j = k
			if !p.is(j, hi, tComma) {
				break
			}
			j++
		}
	}
	switch p.kw(j, hi) {
	case kwNOWAIT:
		j++
	case kwSKIP:
		if p.kw(j+1, hi) == kwLOCKED {
			j += 2
		}
	case kwWAIT:
		j++
		if p.is(j, hi, tNumber) {
			j++
		}
	}
	return j
}

// selectInto handles Postgres SELECT … INTO [TEMP|TEMPORARY|UNLOGGED]
// [TABLE] name, which creates a table.
func (p *parser) selectInto(i, hi int) int {
	for {
		switch p.kw(i, hi) {
		case kwTEMP, kwTEMPORARY, kwUNLOGGED, kwTABLE, kwLOCAL, kwGLOBAL:
			i++
			continue
		}
		break
	}
	if p.is(i, hi, tVar) || p.is(i, hi, tNamed) || p.is(i, hi, tParam) {
		return i + 1
	}
	n, j, ok := p.name(i, hi)
	if !ok {
		p.addSchema(Name{})
		return i
	}
	p.addSchema(n)
	return j
}
