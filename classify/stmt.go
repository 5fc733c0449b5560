package classify

import "strings"

// stmt classifies the statement toks[lo:hi].
func (p *parser) stmt(lo, hi int) {
	if lo >= hi {
		return
	}
	if p.depth > maxDepth {
		p.wholeDB()
		return
	}
	p.depth++
	defer func() { p.depth-- }()

	t := &p.toks[lo]
	if t.kind == tLParen {
		p.query(lo, hi)
		return
	}
	if t.kind != tWord {
		p.wholeDB()
		return
	}
	switch t.kw {
	case kwSELECT, kwVALUES, kwTABLE:
		p.query(lo, hi)
	case kwWITH:
		p.with(lo, hi)
	case kwINSERT, kwREPLACE:
		p.insert(lo, hi)
	case kwUPDATE:
		p.update(lo, hi)
	case kwDELETE:
		p.delete(lo, hi)
	case kwMERGE:
		p.merge(lo, hi)
	case kwCREATE:
		p.create(lo, hi)
	case kwALTER:
		p.alter(lo, hi)
	case kwDROP:
		p.drop(lo, hi)
	case kwRENAME:
		p.rename(lo, hi)
	case kwTRUNCATE:
		p.truncate(lo, hi)
	case kwBEGIN, kwSTART, kwCOMMIT, kwEND, kwROLLBACK, kwABORT, kwSAVEPOINT, kwRELEASE, kwXA:
		p.tx(lo, hi)
	case kwPREPARE:
		p.prepare(lo, hi)
	case kwEXPLAIN, kwDESCRIBE, kwDESC:
		p.explain(lo, hi)
	case kwSHOW, kwHELP, kwCHECKSUM, kwHANDLER, kwFETCH:
		p.st.Read = true
		p.scan(lo+1, hi, 0)
	case kwCHECK:
		p.st.Read = true
		p.mysqlImplicitCommit()
		p.scan(lo+1, hi, 0)
	case kwSET:
		p.set(lo, hi)
	case kwPRAGMA:
		p.pragma(lo, hi)
	case kwCOPY:
		p.copy(lo, hi)
	case kwLOAD:
		p.load(lo, hi)
	case kwREFRESH:
		p.refresh(lo, hi)
	case kwDECLARE:
		// DECLARE name CURSOR … FOR query: the query is what runs.
		f := p.find(lo+1, hi, kwFOR)
		p.scan(lo+1, f, 0)
		if f < hi {
			p.stmt(f+1, hi)
		}
	case kwLOCK, kwUNLOCK, kwFLUSH, kwOPTIMIZE, kwANALYZE, kwANALYSE:
		p.mysqlImplicitCommit()
		p.scan(lo+1, hi, 0)
	case kwGRANT, kwREVOKE:
		p.mysqlImplicitCommit()
		p.grant(lo+1, hi)
	case kwUSE:
		// The current database changes: names resolve elsewhere.
		p.st.Use = true
		p.scan(lo+1, hi, 0)
	case kwVACUUM, kwREINDEX, kwCHECKPOINT, kwCLUSTER, kwLISTEN, kwUNLISTEN, kwNOTIFY,
		kwDISCARD, kwDEALLOCATE, kwRESET, kwCLOSE, kwMOVE, kwCOMMENT, kwKILL:
		// No data change.
		p.scan(lo+1, hi, 0)
	case kwATTACH, kwDETACH, kwIMPORT:
		// SQLite's ATTACH and DETACH, IMPORT FOREIGN SCHEMA (PostgreSQL),
		// IMPORT TABLE (MySQL): tables appear or go, which no one name
		// bounds; a schema change of unknown scope.
		p.addSchema(Name{})
	default:
		// CALL, EXEC, EXECUTE, DO, unknown statements.
		p.wholeDB()
	}
}

// mysqlImplicitCommit notes that a MySQL statement commits the active
// transaction.
func (p *parser) mysqlImplicitCommit() {
	if p.d == MySQL && !p.body {
		p.st.ImplicitCommit = true
	}
}

// query classifies a SELECT, VALUES, TABLE or parenthesised query.
func (p *parser) query(lo, hi int) {
	p.st.Read = true
	p.scan(lo, hi, scanQuery)
}

// with classifies WITH [RECURSIVE] name [(cols)] AS [[NOT] MATERIALIZED]
// (stmt) [SEARCH …] [CYCLE …], … main-statement.
func (p *parser) with(lo, hi int) {
	i := lo + 1
	if p.kw(i, hi) == kwRECURSIVE {
		i++
	}
	for {
		if !p.isIdent(i, hi) {
			p.wholeDB()
			p.scan(i, hi, scanQuery)
			return
		}
		i++
		if p.is(i, hi, tLParen) {
			i = p.close(i, hi)
		}
		if p.kw(i, hi) != kwAS {
			p.wholeDB()
			p.scan(i, hi, scanQuery)
			return
		}
		i++
		if p.kw(i, hi) == kwNOT {
			i++
		}
		if p.kw(i, hi) == kwMATERIALIZED {
			i++
		}
		if !p.is(i, hi, tLParen) {
			p.wholeDB()
			p.scan(i, hi, scanQuery)
			return
		}
		end := p.close(i, hi)
		p.stmt(i+1, end-1)
		i = end
		// SEARCH … SET col, CYCLE … SET col [TO v DEFAULT v] USING col.
		for i < hi && !p.is(i, hi, tComma) && !p.mainStart(i, hi) {
			i++
		}
		if p.is(i, hi, tComma) {
			i++
			continue
		}
		break
	}
	if i >= hi {
		p.wholeDB()
		return
	}
	p.stmt(i, hi)
}

// mainStart reports whether the token at i can start the main statement of
// a WITH.
func (p *parser) mainStart(i, hi int) bool {
	if p.is(i, hi, tLParen) {
		return true
	}
	switch p.kw(i, hi) {
	case kwSELECT, kwVALUES, kwTABLE, kwINSERT, kwUPDATE, kwDELETE, kwMERGE, kwREPLACE:
		return true
	}
	return false
}

// grant checks GRANT/REVOKE privilege lists: a privilege named like a
// statement must be followed by ",", "(", ON, TO or FROM.
func (p *parser) grant(lo, hi int) {
	for i := lo; i < hi; i++ {
		if p.is(i, hi, tLParen) {
			p.scan(i+1, p.close(i, hi)-1, 0)
			i = p.close(i, hi) - 1
			continue
		}
		if p.is(i, hi, tWord) && p.dangerous(i, lo, hi, 0) {
			switch k := p.kw(i+1, hi); {
			case k == kwON || k == kwTO || k == kwFROM || i+1 == hi || p.is(i+1, hi, tComma) || p.is(i+1, hi, tLParen):
			default:
				p.wholeDB()
			}
		}
	}
}

// tx classifies transaction control.
func (p *parser) tx(lo, hi int) {
	p.scan(lo+1, hi, 0)
	i := lo + 1
	k := p.kw(lo, hi)
	skipWork := func() {
		if k := p.kw(i, hi); k == kwWORK || k == kwTRANSACTION {
			i++
		}
	}
	chain := func() bool {
		return p.kw(i, hi) == kwAND && p.kw(i+1, hi) == kwCHAIN
	}
	switch k {
	case kwBEGIN:
		if p.kw(i, hi) == kwNOT && p.kw(i+1, hi) == kwATOMIC { // MariaDB anonymous block
			p.compoundBody(i+2, hi)
			return
		}
		if p.kw(i, hi) == kwATOMIC {
			p.compoundBody(i+1, hi)
			return
		}
		p.mysqlImplicitCommit()
		p.addTx(Begin, "")
	case kwSTART:
		if p.kw(i, hi) != kwTRANSACTION {
			p.wholeDB()
			return
		}
		p.mysqlImplicitCommit()
		p.addTx(Begin, "")
	case kwCOMMIT, kwEND:
		skipWork()
		if k == kwCOMMIT && p.kw(i, hi) == kwPREPARED { // Postgres: another transaction
			p.wholeDB()
			return
		}
		p.addTx(Commit, "")
		if chain() {
			p.addTx(Begin, "")
		}
	case kwROLLBACK, kwABORT:
		skipWork()
		if p.kw(i, hi) == kwPREPARED {
			// ROLLBACK PREPARED: another transaction, whose writes
			// were never visible; nothing changes.
			return
		}
		if p.kw(i, hi) == kwTO {
			i++
			if p.kw(i, hi) == kwSAVEPOINT {
				i++
			}
			p.addTx(RollbackTo, p.identAt(i, hi))
			return
		}
		p.addTx(Rollback, "")
		if chain() {
			p.addTx(Begin, "")
		}
	case kwSAVEPOINT:
		p.addTx(Savepoint, p.identAt(i, hi))
	case kwRELEASE:
		if p.kw(i, hi) == kwSAVEPOINT {
			i++
		}
		p.addTx(Release, p.identAt(i, hi))
	case kwXA:
		switch p.kw(i, hi) {
		case kwSTART, kwBEGIN:
			p.addTx(Begin, "")
		case kwPREPARE:
			// The transaction leaves the session, as with PREPARE
			// TRANSACTION (see prepare).
			p.addTx(Rollback, "")
		case kwCOMMIT:
			p.addTx(Commit, "")
			p.wholeDB() // may commit a transaction prepared elsewhere
		case kwROLLBACK:
			p.addTx(Rollback, "")
		case kwEND:
		default:
			p.st.Read = true // XA RECOVER
		}
	}
}

// identAt returns the folded identifier at i, or "".
func (p *parser) identAt(i, hi int) string {
	if p.isIdent(i, hi) {
		return p.fold(&p.toks[i])
	}
	return ""
}

// compoundBody classifies the first statement of a compound body (after
// BEGIN); the others are separate spans.
func (p *parser) compoundBody(i, hi int) {
	saved := p.body
	p.body = true
	p.stmt(i, hi)
	p.body = saved
}

// prepare: Postgres PREPARE name AS stmt and MySQL PREPARE s FROM … do
// not run anything; PREPARE TRANSACTION 'id' takes the transaction away
// from the session (reported as Rollback: its writes are not visible
// until COMMIT PREPARED, which widens to the whole database).
func (p *parser) prepare(lo, hi int) {
	if p.kw(lo+1, hi) == kwTRANSACTION {
		p.addTx(Rollback, "")
	}
}

// explain classifies EXPLAIN / DESCRIBE: a read, unless ANALYZE makes it
// run the statement (Postgres, MySQL).
func (p *parser) explain(lo, hi int) {
	p.st.Read = true
	i := lo + 1
	analyze := false
loop:
	for i < hi {
		if p.startsStatement(i, hi) {
			break
		}
		switch k := p.kw(i, hi); k {
		case kwCREATE, kwEXECUTE, kwDECLARE:
			break loop
		}
		if w := lowerASCII(p.toks[i].text); p.is(i, hi, tWord) && (w == "analyze" || w == "analyse") {
			analyze = true
		}
		if p.is(i, hi, tLParen) {
			end := p.close(i, hi)
			if p.startsStatement(i+1, end-1) {
				break
			}
			if p.find(i+1, end-1, kwANALYZE, kwANALYSE) < end-1 {
				analyze = true
			}
			i = end
			continue
		}
		i++
	}
	// SQLite's EXPLAIN never runs the statement (EXPLAIN ANALYZE explains
	// SQLite's ANALYZE statement).
	if !analyze || p.d == SQLite {
		return
	}
	if i >= hi {
		p.wholeDB()
		return
	}
	p.stmt(i, hi)
}

// set classifies SET: MySQL's autocommit, and subqueries in values.
func (p *parser) set(lo, hi int) {
	p.scan(lo+1, hi, 0)
	if p.d != MySQL {
		return
	}
	i := lo + 1
	for i < hi {
		end := i
		for end < hi && !p.is(end, hi, tComma) {
			if p.is(end, hi, tLParen) {
				end = p.close(end, hi)
				continue
			}
			end++
		}
		p.setItem(i, end)
		i = end + 1
	}
}

// setItem reads one MySQL SET item for the session state idmap tracks:
// autocommit, in every spelling the server takes (autocommit, SESSION
// autocommit, LOCAL autocommit, @@autocommit, @@session.autocommit,
// @@local.autocommit, quoted names; = or :=; 0, 1, ON, OFF, TRUE, FALSE,
// as words or strings, in any number of parentheses). A value it cannot
// read (DEFAULT, a variable, an expression) leaves the session's state
// unknown: the item is reported as autocommit off (a transaction is open,
// which expires at once and again at the end) and the whole database.
func (p *parser) setItem(i, hi int) {
	switch p.kw(i, hi) {
	case kwGLOBAL:
		return
	case kwSESSION, kwLOCAL:
		i++
	}
	if i >= hi {
		return
	}
	t := &p.toks[i]
	if t.kind != tWord && t.kind != tQuoted && t.kind != tVar {
		return
	}
	name := lowerASCII(t.text)
	if t.kind == tVar {
		// @@x, @@session.x, @@local.x (the lexer drops the @s; a user
		// variable @autocommit reads the same and is taken as the system
		// one: wider, never narrower).
		name = strings.TrimPrefix(strings.TrimPrefix(name, "session."), "local.")
	}
	if name != "autocommit" {
		return
	}
	if !(p.isEq(i+1, hi) || p.isOp(i+1, hi, ":=")) {
		p.unknownAutocommit()
		return
	}
	lo := i + 2
	for lo < hi && p.is(lo, hi, tLParen) && p.close(lo, hi) == hi {
		lo, hi = lo+1, hi-1
	}
	if lo+1 != hi {
		p.unknownAutocommit()
		return
	}
	v := &p.toks[lo]
	word := ""
	switch v.kind {
	case tNumber, tWord:
		word = lowerASCII(v.text)
	case tString:
		if !v.amb || p.d == MySQL {
			word = lowerASCII(v.text)
		}
	}
	switch word {
	case "1", "on", "true":
		p.mysqlImplicitCommit()
		p.addAutocommit(Commit)
	case "0", "off", "false":
		p.addAutocommit(Begin)
	default:
		p.unknownAutocommit()
	}
}

// unknownAutocommit reports a change to autocommit whose value is not
// known: as autocommit off, and the whole database.
func (p *parser) unknownAutocommit() {
	p.wholeDB()
	p.addAutocommit(Begin)
}

// readPragmas are the SQLite pragmas that take an argument and only read.
var readPragmas = map[string]bool{
	"table_info": true, "table_xinfo": true, "table_list": true, "index_info": true,
	"index_xinfo": true, "index_list": true, "foreign_key_list": true,
	"foreign_key_check": true, "integrity_check": true, "quick_check": true,
	"optimize": true, "wal_checkpoint": true,
}

// pragma classifies PRAGMA [schema.]name [= value | (value)].
func (p *parser) pragma(lo, hi int) {
	n, j, ok := p.name(lo+1, hi)
	if !ok {
		p.wholeDB()
		return
	}
	if j == hi {
		p.st.Read = true
		return
	}
	if p.is(j, hi, tLParen) && p.close(j, hi) == hi && j+3 == hi && readPragmas[lowerASCII(n.Table)] {
		p.st.Read = true // PRAGMA name(arg)
		return
	}
	p.wholeDB()
}
