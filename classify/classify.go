package classify

import (
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Cache bounds, per dialect. The cache keeps two generations: when the
// current one is full it becomes the old one (whose entries move back into
// the current one when used) and the previous old one is dropped.
const (
	genEntries    = 4096     // entries per generation
	genBytes      = 16 << 20 // estimated bytes (texts and results) per generation
	maxCachedText = 64 << 10 // longer texts are classified every time
)

// generation is one generation of a dialect's statement cache. Concurrent
// stores may each pass the bound checks before any of them adds, so a
// generation may exceed genEntries and genBytes by a few entries.
type generation struct {
	m     sync.Map     // string → *Statement
	n     atomic.Int64 // entries in m
	bytes atomic.Int64 // estimated size of m's keys and values
}

// stmtCache is the statement cache of one dialect. Lookups load cur (and,
// on a miss, old) without a lock; only a rotation takes mu.
type stmtCache struct {
	cur atomic.Pointer[generation]
	old atomic.Pointer[generation]
	mu  sync.Mutex // serialises rotation of cur into old
}

// caches holds the statement cache of each dialect.
var caches [numDialects]stmtCache

// Classify returns what the statement text sql may do in dialect d. The
// text may hold several statements separated by ";". An unknown dialect is
// treated as Generic.
//
// The result is cached per (dialect, text) and shared: callers must not
// modify it. A repeated text costs one map lookup and no allocation.
// Classify is safe for concurrent use.
func Classify(d Dialect, sql string) *Statement {
	if d >= numDialects {
		d = Generic
	}
	c := &caches[d]
	if g := c.cur.Load(); g != nil {
		if v, ok := g.m.Load(sql); ok {
			return v.(*Statement)
		}
	}
	return c.miss(d, sql)
}

// miss is Classify's path for a text not in the current generation. A text
// found in the old generation moves back into the current one. Any other
// is classified and, unless longer than maxCachedText, kept under a clone
// of the text, so that the cache holds no larger string (a script, a
// buffer) that the caller's text may be a part of. Concurrent misses on
// one text may each classify it; they all return the one Statement the
// cache keeps.
func (c *stmtCache) miss(d Dialect, sql string) *Statement {
	if g := c.old.Load(); g != nil {
		if v, ok := g.m.Load(sql); ok {
			// Stored under a copy, as a new text is: the caller's string
			// may be part of a larger one that the cache must not keep.
			return c.store(strings.Clone(sql), v.(*Statement))
		}
	}
	s := classifyText(d, sql)
	if len(sql) > maxCachedText {
		return s
	}
	return c.store(strings.Clone(sql), s)
}

// store adds s under sql to the current generation, rotating it when full,
// and returns the statement the cache holds for sql.
func (c *stmtCache) store(sql string, s *Statement) *Statement {
	cost := int64(len(sql)) + s.size()
	g := c.cur.Load()
	if g == nil || g.n.Load() >= genEntries || g.bytes.Load()+cost > genBytes {
		c.mu.Lock()
		g = c.cur.Load()
		if g == nil || g.n.Load() >= genEntries || g.bytes.Load()+cost > genBytes {
			if g != nil {
				c.old.Store(g)
			}
			g = new(generation)
			c.cur.Store(g)
		}
		c.mu.Unlock()
	}
	v, loaded := g.m.LoadOrStore(sql, s)
	if !loaded {
		g.n.Add(1)
		g.bytes.Add(cost)
	}
	return v.(*Statement)
}

// size estimates the memory held by s.
func (s *Statement) size() int64 {
	n := int64(128 + 32*len(s.Schema) + 24*len(s.Tx))
	for _, l := range [][]string{s.Calls, s.Names, s.Operators} {
		for _, x := range l {
			n += 16 + int64(len(x))
		}
	}
	for _, w := range s.Writes {
		n += 200
		for _, c := range w.Where {
			for _, r := range c.Values {
				n += 24 + 48*int64(len(r))
			}
		}
		for _, r := range w.Values {
			n += 24 + 48*int64(len(r))
		}
		n += 64 * int64(len(w.Set)+len(w.Columns))
	}
	return n
}

// Lexical rules of each dialect's primary reading.
var (
	sqliteLex   = lexOpts{dquoteAmb: true, backtick: true, brackets: true, question: true, qnum: true, named: true, dollarNamed: true}
	mysqlLex    = lexOpts{backslash: true, dquoteString: true, backtick: true, hashComment: true, mysqlDash: true, question: true, execComment: true, digitIdent: true, atVar: true}
	postgresLex = lexOpts{nested: true, dollarQuote: true, dollarParam: true, eStrings: true, uamp: true}
	genericLex  = lexOpts{dquoteAmb: true, backtick: true, brackets: true, question: true, named: true, dollarParam: true}
)

// readings returns the lexical rules under which sql must be classified:
// the dialect's usual ones first, then those that server settings or an
// unknown dialect could impose, when the text has a character whose
// meaning they change.
func readings(d Dialect, sql string) []lexOpts {
	hasBS := strings.IndexByte(sql, '\\') >= 0
	switch d {
	case SQLite:
		return []lexOpts{sqliteLex}
	case MySQL:
		rs := []lexOpts{mysqlLex}
		if hasBS { // NO_BACKSLASH_ESCAPES, ANSI_QUOTES
			a, b, c := mysqlLex, mysqlLex, mysqlLex
			a.backslash = false
			b.dquoteString = false
			c.backslash, c.dquoteString = false, false
			rs = append(rs, a, b, c)
		}
		if strings.Contains(sql, "/*!") || strings.Contains(sql, "/*M!") {
			o := mysqlLex
			o.execComment = false // a server too old for the version in the comment
			rs = append(rs, o)
		}
		return rs
	case Postgres:
		rs := []lexOpts{postgresLex}
		if hasBS { // standard_conforming_strings = off
			o := postgresLex
			o.backslash = true
			rs = append(rs, o)
		}
		return rs
	}
	rs := []lexOpts{genericLex}
	add := func(cond bool, f func(o *lexOpts)) {
		if cond {
			o := genericLex
			f(&o)
			rs = append(rs, o)
		}
	}
	add(hasBS, func(o *lexOpts) { o.backslash = true })
	add(strings.IndexByte(sql, '#') >= 0, func(o *lexOpts) { o.hashComment = true })
	add(strings.IndexByte(sql, '$') >= 0, func(o *lexOpts) { o.dollarQuote = true })
	add(strings.Contains(sql, "/*"), func(o *lexOpts) { o.nested = true })
	add(strings.Contains(sql, "--"), func(o *lexOpts) { o.mysqlDash = true })
	add(strings.IndexByte(sql, '"') >= 0, func(o *lexOpts) { o.dquoteString = true })
	return rs
}

// classifyText classifies sql under every reading and merges the results.
func classifyText(d Dialect, sql string) *Statement {
	var out *Statement
	for i, o := range readings(d, sql) {
		s := classifyReading(d, sql, &o)
		if i == 0 {
			out = s
			continue
		}
		out.merge(s)
	}
	out.finish()
	return out
}

// merge adds another reading's classification to s: the union of what
// either may write. Args stay those of the primary reading; transaction
// control that differs widens to the whole database.
func (s *Statement) merge(o *Statement) {
	s.Read = s.Read || o.Read
	s.Locking = s.Locking || o.Locking
	s.WholeDB = s.WholeDB || o.WholeDB
	s.ImplicitCommit = s.ImplicitCommit || o.ImplicitCommit
	// Duplicates are found by pairwise comparison, up to 4096 pairs; past
	// that they are kept, which only repeats an expiry.
	n := len(s.Writes)
	for _, w := range o.Writes {
		dup := false
		for k := 0; k < n && n*len(o.Writes) <= 1<<12; k++ {
			if reflect.DeepEqual(w, s.Writes[k]) {
				dup = true
				break
			}
		}
		if !dup {
			s.Writes = append(s.Writes, w)
		}
	}
	s.Schema = append(s.Schema, o.Schema...)
	s.Calls = union(s.Calls, o.Calls)
	s.Names = union(s.Names, o.Names)
	s.Operators = union(s.Operators, o.Operators)
	s.Use = s.Use || o.Use
	if !reflect.DeepEqual(s.Tx, o.Tx) {
		s.WholeDB = true
	}
}

// finish removes duplicate schema changes and empty slices.
func (s *Statement) finish() {
	if len(s.Schema) > 1 {
		seen := make(map[SchemaChange]bool, len(s.Schema))
		out := s.Schema[:0]
		for _, c := range s.Schema {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
		s.Schema = out
	}
	if len(s.Writes) == 0 {
		s.Writes = nil
	}
	if len(s.Schema) == 0 {
		s.Schema = nil
	}
	if len(s.Tx) == 0 {
		s.Tx = nil
	}
}

// classifyReading lexes and classifies sql under one set of lexical rules.
func classifyReading(d Dialect, sql string, o *lexOpts) *Statement {
	toks, ok := lex(sql, o, nil)
	p := &parser{d: d, toks: toks, st: &Statement{}}
	if !ok {
		p.st.WholeDB = true // an unterminated string, identifier or comment
	}
	p.match = matchParens(toks)
	p.st.Calls = calls(toks)
	p.st.Names, p.st.Operators = names(toks, d)
	spans := p.split()
	p.st.Args = p.numberParams(spans)
	for _, s := range spans {
		if s.lo == s.hi {
			continue
		}
		if !p.balanced(s) {
			p.st.WholeDB = true
			continue
		}
		p.body = s.body
		p.depth = 0
		p.stmt(s.lo, s.hi)
	}
	return p.st
}

// union adds to a the strings of b that it lacks.
func union(a, b []string) []string {
	for _, c := range b {
		if !slices.Contains(a, c) {
			a = append(a, c)
		}
	}
	return a
}

// calls returns the names followed by "(" in toks, lower-cased, once each.
// Keywords that open a list or a subquery rather than call a function (IN
// (…), EXISTS (…), VALUES (…), …) are not calls: no dialect lets a function
// take such a name unquoted.
func calls(toks []token) []string {
	var out []string
	for i := 0; i+1 < len(toks); i++ {
		t := &toks[i]
		if (t.kind != tWord && t.kind != tQuoted) || toks[i+1].kind != tLParen {
			continue
		}
		if t.kind == tWord && reserved(t.kw) && (i == 0 || toks[i-1].kind != tDot) {
			continue
		}
		name := strings.ToLower(t.text)
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// reserved reports whether a keyword is one that no dialect takes as the
// unquoted name of a table, view or function: it names nothing the
// catalogue could hold. (LEFT, RIGHT, INSERT and REPLACE are not among
// them: they are also functions.) After a dot, every word is a name.
func reserved(k kw) bool {
	switch k {
	case kwSELECT, kwFROM, kwWHERE, kwAND, kwOR, kwNOT, kwIN, kwIS, kwNULL, kwAS, kwON, kwJOIN,
		kwINNER, kwOUTER, kwCROSS, kwNATURAL, kwUSING, kwGROUP, kwBY, kwORDER,
		kwHAVING, kwLIMIT, kwOFFSET, kwUNION, kwALL, kwDISTINCT, kwCASE, kwWHEN, kwTHEN, kwELSE,
		kwEND, kwEXISTS, kwBETWEEN, kwLIKE, kwINTO, kwVALUES, kwUPDATE, kwSET, kwDELETE,
		kwTRUE, kwFALSE, kwDEFAULT, kwFOR, kwWITH, kwANY, kwARRAY, kwROW, kwRETURNING, kwEXCEPT,
		kwINTERSECT, kwDESC, kwCREATE, kwDROP, kwALTER, kwTABLE:
		return true
	}
	return false
}

// names returns what toks name, lower-cased, once each: every word but
// the reserved keywords, every quoted identifier, and each qualified name
// both as its parts and as "a.b" pairs; and, apart, the runs of operator
// characters (the lexer splits an operator it does not know, such as a
// user-defined ###, into one token per character: a run holds every
// operator that stands there). Nothing is left out because of where it
// stands: a view, a function or an operator that the catalogue marks is
// found wherever the text names it.
func names(toks []token, d Dialect) (names, ops []string) {
	seen := map[string]bool{}
	add := func(list *[]string, s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			*list = append(*list, s)
		}
	}
	ident := func(i int) bool {
		t := &toks[i]
		return t.kind == tQuoted || t.kind == tWord && (!reserved(t.kw) || i > 0 && toks[i-1].kind == tDot)
	}
	for i := 0; i < len(toks); i++ {
		t := &toks[i]
		switch {
		case ident(i):
			n := strings.ToLower(t.text)
			add(&names, n)
			if i+2 < len(toks) && toks[i+1].kind == tDot && ident(i+2) {
				add(&names, n+"."+strings.ToLower(toks[i+2].text))
			}
		case t.kind == tOp && (d == Postgres || d == Generic):
			run := t.text
			for i+1 < len(toks) && toks[i+1].kind == tOp {
				i++
				run += toks[i].text
			}
			add(&ops, run)
		}
	}
	return names, ops
}

// matchParens pairs parentheses: match[i] is the index of the other one,
// -1 when unmatched.
func matchParens(toks []token) []int {
	match := make([]int, len(toks))
	var stack []int
	for i := 0; i < len(toks); i++ {
		match[i] = -1
		switch toks[i].kind {
		case tLParen:
			stack = append(stack, i)
		case tRParen:
			if n := len(stack); n > 0 {
				o := stack[n-1]
				stack = stack[:n-1]
				match[o] = i
				match[i] = o
			}
		}
	}
	return match
}

// balanced reports whether every parenthesis in s has its partner in s,
// and s has no ";" inside parentheses (only Postgres' CREATE RULE has
// them).
func (p *parser) balanced(s span) bool {
	for i := s.lo; i < s.hi; i++ {
		switch p.toks[i].kind {
		case tLParen, tRParen:
			if m := p.match[i]; m < s.lo || m >= s.hi {
				return false
			}
		case tSemi:
			if p.toks[s.lo].kw != kwCREATE {
				return false
			}
		}
	}
	return true
}

// split divides the tokens into statements at ";" outside parentheses and
// outside the bodies of compound statements (CREATE TRIGGER … BEGIN …
// END, MySQL procedures, MariaDB's BEGIN NOT ATOMIC, Postgres' BEGIN
// ATOMIC), whose inner statements become spans marked body.
func (p *parser) split() []span {
	toks := p.toks
	var spans []span
	depth := 0    // parentheses
	compound := 0 // open blocks of a compound body
	start := 0
	startBody := false
	routine := false  // the statement is CREATE … TRIGGER/PROCEDURE/FUNCTION/EVENT
	kindSeen := false // the statement's object kind (TABLE, TRIGGER, …) has been seen
	for k := 0; k < len(toks); k++ {
		t := &toks[k]
		switch t.kind {
		case tLParen:
			depth++
		case tRParen:
			if depth > 0 {
				depth--
			}
		case tSemi:
			if depth == 0 {
				spans = append(spans, span{lo: start, hi: k, body: startBody})
				start = k + 1
				startBody = compound > 0
				if compound == 0 {
					routine, kindSeen = false, false
				}
			}
		case tWord:
			if depth > 0 {
				break
			}
			if compound == 0 {
				switch t.kw {
				case kwTRIGGER, kwPROCEDURE, kwFUNCTION, kwEVENT:
					if !kindSeen && start < len(toks) && toks[start].kw == kwCREATE {
						routine = true
					}
					kindSeen = true
				case kwTABLE, kwVIEW, kwINDEX, kwSCHEMA, kwDATABASE, kwRULE:
					kindSeen = true
				case kwBEGIN:
					if routine || k == start && k+2 < len(toks) && toks[k+1].kw == kwNOT && toks[k+2].kw == kwATOMIC {
						compound = 1
					}
				}
				break
			}
			switch t.kw {
			case kwBEGIN, kwCASE:
				compound++
			case kwIF, kwLOOP, kwWHILE, kwREPEAT:
				if k > 0 && atStatementStart(&toks[k-1]) {
					compound++
				}
			case kwEND:
				compound--
				if k+1 < len(toks) && toks[k+1].kind == tWord {
					switch toks[k+1].kw {
					case kwIF, kwCASE, kwLOOP, kwWHILE, kwREPEAT, kwNone:
						k++
					}
				}
			}
		}
	}
	spans = append(spans, span{lo: start, hi: len(toks), body: startBody})
	return spans
}

// atStatementStart reports whether a token just before a word places it at
// the start of a statement inside a compound body.
func atStatementStart(t *token) bool {
	switch t.kind {
	case tSemi:
		return true
	case tOp:
		return t.text == ":"
	case tWord:
		switch t.kw {
		case kwBEGIN, kwTHEN, kwELSE, kwDO, kwLOOP, kwREPEAT, kwATOMIC:
			return true
		}
	}
	return false
}

// numberParams gives each positional placeholder its ordinal among the
// text's arguments and returns how many arguments the text consumes.
func (p *parser) numberParams(spans []span) int {
	count, maxN, offset := 0, 0, 0
	for _, s := range spans {
		local := 0
		var names map[string]int
		for k := s.lo; k < s.hi; k++ {
			t := &p.toks[k]
			switch t.kind {
			case tParam:
				switch {
				case p.d == SQLite:
					idx := t.n
					if idx == 0 {
						idx = local + 1
					}
					local = max(local, idx)
					t.n = offset + idx
				case t.n == 0:
					count++
					t.n = count
				default:
					maxN = max(maxN, t.n)
				}
			case tNamed:
				if p.d == SQLite {
					if names == nil {
						names = map[string]int{}
					}
					if names[t.text] == 0 {
						local++
						names[t.text] = local
					}
				}
			}
		}
		offset += local
	}
	if p.d == SQLite {
		return offset
	}
	return max(count, maxN)
}
