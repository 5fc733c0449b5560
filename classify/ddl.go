package classify

// skipIfExists skips IF [NOT] EXISTS at i.
func (p *parser) skipIfExists(i, hi int) int {
	if p.kw(i, hi) != kwIF {
		return i
	}
	i++
	if p.kw(i, hi) == kwNOT {
		i++
	}
	if p.kw(i, hi) == kwEXISTS {
		i++
	}
	return i
}

// harmlessObject reports whether creating, altering or dropping an object
// of this kind changes no table's data or definition.
func harmlessObject(t *token) bool {
	if t.kind != tWord {
		return false
	}
	switch lowerASCII(t.text) {
	case "sequence", "role", "user", "tablespace", "statistics", "collation", "server", "login", "group", "publication", "subscription":
		return true
	}
	return false
}

// create classifies CREATE ….
func (p *parser) create(lo, hi int) {
	i := lo + 1
	temp := false
	// Modifiers before the object kind.
	for i < hi {
		t := &p.toks[i]
		if t.kind != tWord {
			if t.kind == tOp || t.kind == tString || t.kind == tQuoted || t.kind == tVar || t.kind == tLParen || t.kind == tRParen || t.kind == tDot {
				i++ // DEFINER = 'u'@'h', ALGORITHM = MERGE, CURRENT_USER()
				continue
			}
			break
		}
		switch t.kw {
		case kwTEMP, kwTEMPORARY:
			temp = true
		case kwOR:
			if p.kw(i+1, hi) != kwREPLACE {
				goto kind
			}
			i++
		case kwUNLOGGED, kwGLOBAL, kwLOCAL, kwVIRTUAL, kwUNIQUE, kwMATERIALIZED,
			kwRECURSIVE, kwCONSTRAINT, kwFOREIGN, kwALGORITHM, kwDEFINER, kwSECURITY, kwMERGE:
		case kwNone:
			switch lowerASCII(t.text) {
			case "sql", "invoker", "current_user", "merge", "undefined", "temptable", "fulltext", "spatial", "online", "offline", "aggregate", "trusted", "procedural":
			default:
				goto kind
			}
		default:
			goto kind
		}
		i++
	}
kind:
	// MySQL: CREATE TEMPORARY TABLE does not commit the transaction.
	if !temp {
		p.mysqlImplicitCommit()
	}
	switch k := p.kw(i, hi); {
	case k == kwTABLE:
		p.createTable(i+1, hi)
	case k == kwVIEW:
		j := p.skipIfExists(i+1, hi)
		n, j, ok := p.name(j, hi)
		if !ok {
			p.addSchema(Name{})
			return
		}
		p.addSchema(n)
		p.scan(j, hi, scanDDL)
	case k == kwINDEX:
		j := p.skipIfExists(i+1, hi)
		if p.kw(j, hi) == kwCONCURRENTLY {
			j = p.skipIfExists(j+1, hi)
		}
		var schema string
		if idx, _, ok := p.name(j, hi); ok && p.kw(j, hi) != kwON {
			schema = idx.Schema
		}
		on := p.find(j, hi, kwON)
		j = on + 1
		if p.kw(j, hi) == kwONLY {
			j++
		}
		n, j, ok := p.name(j, hi)
		if on == hi || !ok {
			p.addSchema(Name{})
			p.scan(on, hi, scanDDL)
			return
		}
		// SQLite: CREATE INDEX aux.i ON t makes an index of aux.t.
		if n.Schema == "" {
			n.Schema = schema
		}
		p.addSchema(n)
		p.scan(j, hi, scanDDL)
	case k == kwTRIGGER:
		p.createTrigger(i+1, hi)
	case i < hi && harmlessObject(&p.toks[i]):
	default:
		// FUNCTION, PROCEDURE, EVENT, RULE, SCHEMA, DATABASE, TYPE, …:
		// flush everything; their bodies are not run now.
		p.addSchema(Name{})
	}
}

// createTable classifies the rest of CREATE TABLE after TABLE.
func (p *parser) createTable(i, hi int) {
	i = p.skipIfExists(i, hi)
	n, j, ok := p.name(i, hi)
	if !ok {
		p.addSchema(Name{})
		return
	}
	p.addSchema(n)
	// AS query, or MySQL's CREATE TABLE t (…) [IGNORE|REPLACE] [AS] SELECT.
	q := hi
	for k := j; k < hi; k++ {
		if p.is(k, hi, tLParen) {
			if p.startsStatement(k+1, hi) && (k == j || p.kw(k-1, hi) == kwAS) {
				q = k
				break
			}
			k = p.close(k, hi) - 1
			continue
		}
		if p.kw(k, hi) == kwAS && (p.startsStatement(k+1, hi) || p.is(k+1, hi, tLParen) && p.startsStatement(k+2, hi)) {
			q = k + 1
			break
		}
		if p.kw(k, hi) == kwSELECT || p.kw(k, hi) == kwWITH || p.kw(k, hi) == kwVALUES {
			q = k
			break
		}
	}
	p.scan(j, q, scanDDL)
	if q < hi {
		p.stmt(q, hi)
	}
}

// createTrigger classifies the rest of CREATE TRIGGER after TRIGGER: a
// schema change on the trigger's table. The statements of its body are
// reported as if they ran (they only widen).
func (p *parser) createTrigger(i, hi int) {
	on := p.find(i, hi, kwON)
	n, j, ok := p.name(on+1, hi)
	if on == hi || !ok {
		p.addSchema(Name{})
		return
	}
	p.addSchema(n)
	// The header: name, timing, events (INSERT, UPDATE [OF cols], DELETE,
	// TRUNCATE, joined by OR or ","). An event keyword followed by
	// anything else is not understood.
	for k := i; k < on; k++ {
		switch p.kw(k, on) {
		case kwINSERT, kwUPDATE, kwDELETE, kwTRUNCATE:
			switch next := p.kw(k+1, hi); {
			case next == kwON || next == kwOF || p.is(k+1, hi, tComma):
			case next == kwOR && isEvent(p.kw(k+2, hi)):
			default:
				p.wholeDB()
			}
		default:
			if p.is(k, on, tWord) && p.dangerous(k, i, on, scanDDL) {
				p.wholeDB()
			}
		}
	}
	if b := p.find(j, hi, kwBEGIN); b < hi {
		p.scan(j, b, scanDDL)
		p.compoundBody(b+1, hi)
		return
	}
	// MySQL: FOR EACH ROW [FOLLOWS|PRECEDES t] statement.
	if f := p.find(j, hi, kwEACH); f < hi && p.kw(f+1, hi) == kwROW {
		k := f + 2
		if p.kw(k, hi) == kwFOLLOWS || p.kw(k, hi) == kwPRECEDES {
			k += 2
		}
		if k < hi && p.kw(k, hi) != kwEXECUTE && p.kw(k, hi) != kwWHEN {
			p.scan(j, f, scanDDL)
			p.compoundBody(k, hi)
			return
		}
	}
	p.scan(j, hi, scanDDL)
}

// isEvent reports whether k is an event of a trigger's header.
func isEvent(k kw) bool {
	return k == kwINSERT || k == kwUPDATE || k == kwDELETE || k == kwTRUNCATE
}

// alter classifies ALTER ….
func (p *parser) alter(lo, hi int) {
	p.mysqlImplicitCommit()
	i := lo + 1
	for k := p.kw(i, hi); k == kwIGNORE || i < hi && lowerASCII(p.toks[i].text) == "online"; k = p.kw(i, hi) {
		i++
	}
	k := p.kw(i, hi)
	if k == kwMATERIALIZED && p.kw(i+1, hi) == kwVIEW {
		i++
		k = kwVIEW
	}
	switch {
	case k == kwTABLE || k == kwVIEW:
		j := p.skipIfExists(i+1, hi)
		if p.kw(j, hi) == kwONLY {
			j++
		}
		n, j, ok := p.name(j, hi)
		if !ok || p.kw(j, hi) == kwIN { // ALTER TABLE ALL IN TABLESPACE
			p.addSchema(Name{})
			return
		}
		p.addSchema(n)
		p.alterActions(n, j, hi)
	case i < hi && harmlessObject(&p.toks[i]):
	default:
		p.addSchema(Name{})
	}
}

// alterActions reports the new names of ALTER TABLE … RENAME and SET
// SCHEMA, and scans the rest.
func (p *parser) alterActions(n Name, i, hi int) {
	for k := i; k < hi; k++ {
		if p.is(k, hi, tLParen) {
			k = p.close(k, hi) - 1
			continue
		}
		switch p.kw(k, hi) {
		case kwRENAME:
			j := k + 1
			switch p.kw(j, hi) {
			case kwCOLUMN, kwINDEX, kwKEY, kwCONSTRAINT:
				continue
			case kwTO, kwAS:
				j++
			}
			if m, _, ok := p.name(j, hi); ok {
				p.addSchema(m)
			}
		case kwSET:
			if p.kw(k+1, hi) == kwSCHEMA && p.isIdent(k+2, hi) {
				p.addSchema(Name{Schema: p.fold(&p.toks[k+2]), Table: n.Table})
			}
		}
	}
	p.scan(i, hi, scanDDL)
}

// drop classifies DROP ….
func (p *parser) drop(lo, hi int) {
	i := lo + 1
	temp := false
	if k := p.kw(i, hi); k == kwTEMPORARY || k == kwTEMP {
		temp = true
		i++
	}
	if !temp {
		p.mysqlImplicitCommit()
	}
	k := p.kw(i, hi)
	if k == kwMATERIALIZED && p.kw(i+1, hi) == kwVIEW {
		i++
		k = kwVIEW
	}
	switch {
	case k == kwTABLE || k == kwVIEW:
		j := p.skipIfExists(i+1, hi)
		for {
			n, k, ok := p.name(j, hi)
			if !ok {
				p.addSchema(Name{})
				return
			}
			p.addSchema(n)
			j = k
			if !p.is(j, hi, tComma) {
				break
			}
			j++
		}
		switch {
		case j == hi || j+1 == hi && p.kw(j, hi) == kwRESTRICT:
		default: // CASCADE, or not understood
			p.addSchema(Name{})
		}
	case k == kwINDEX || k == kwTRIGGER:
		// MySQL names the table (DROP INDEX i ON t); PostgreSQL and
		// SQLite do not, and their DROP is of unknown scope.
		on := p.find(i+1, hi, kwON)
		if n, _, ok := p.name(on+1, hi); on < hi && ok {
			p.addSchema(n)
			return
		}
		p.addSchema(Name{})
	case i < hi && harmlessObject(&p.toks[i]):
	default:
		p.addSchema(Name{})
	}
}

// rename classifies MySQL's RENAME TABLE a TO b, c TO d.
func (p *parser) rename(lo, hi int) {
	p.mysqlImplicitCommit()
	i := lo + 1
	if i < hi && harmlessObject(&p.toks[i]) {
		return
	}
	if p.kw(i, hi) != kwTABLE {
		p.addSchema(Name{})
		return
	}
	i++
	for i < hi {
		n, j, ok := p.name(i, hi)
		if !ok {
			p.addSchema(Name{})
			return
		}
		p.addSchema(n)
		i = j
		if p.kw(i, hi) == kwTO || p.is(i, hi, tComma) {
			i++
			continue
		}
		if i < hi {
			p.addSchema(Name{})
		}
		return
	}
}

// truncate classifies TRUNCATE [TABLE] [ONLY] a [*], …: a write of every
// row and a schema change of each table.
func (p *parser) truncate(lo, hi int) {
	p.mysqlImplicitCommit()
	i := lo + 1
	if p.kw(i, hi) == kwTABLE {
		i++
	}
	for {
		if p.kw(i, hi) == kwONLY {
			i++
		}
		n, j, ok := p.name(i, hi)
		if !ok {
			p.wholeDB()
			p.addSchema(Name{})
			return
		}
		p.addWrite(Write{Table: n, Op: Truncate})
		p.addSchema(n)
		i = j
		if p.isOp(i, hi, "*") {
			i++
		}
		if !p.is(i, hi, tComma) {
			break
		}
		i++
	}
	for ; i < hi; i++ {
		switch w := lowerASCII(p.toks[i].text); {
		case p.kw(i, hi) == kwRESTRICT, w == "restart" || w == "continue" || w == "identity":
		default: // CASCADE, or not understood
			p.wholeDB()
			p.addSchema(Name{})
			return
		}
	}
}

// copy classifies Postgres COPY: FROM writes the table, TO reads.
func (p *parser) copy(lo, hi int) {
	i := lo + 1
	if p.is(i, hi, tLParen) {
		end := p.close(i, hi)
		p.stmt(i+1, end-1)
		p.st.Read = true
		p.scan(end, hi, 0)
		return
	}
	if i < hi && lowerASCII(p.toks[i].text) == "binary" {
		i++
	}
	n, j, ok := p.name(i, hi)
	if !ok {
		p.wholeDB()
		return
	}
	if p.is(j, hi, tLParen) {
		j = p.close(j, hi)
	}
	if p.kw(j, hi) == kwTO {
		p.st.Read = true
	} else {
		p.addWrite(Write{Table: n, Op: Insert})
	}
	p.scan(j, hi, 0)
}

// load classifies MySQL LOAD DATA / LOAD XML … INTO TABLE t.
func (p *parser) load(lo, hi int) {
	switch p.kw(lo+1, hi) {
	case kwDATA, kwXML:
	case kwINDEX:
		// LOAD INDEX INTO CACHE: no data change.
		return
	default:
		p.wholeDB()
		return
	}
	into := p.findPair(lo+2, hi, kwINTO, kwTABLE)
	n, j, ok := p.name(into+2, hi)
	if into == hi || !ok {
		p.wholeDB()
		return
	}
	op := Insert
	if p.find(lo+2, into, kwREPLACE) < into {
		op = Replace
	}
	p.addWrite(Write{Table: n, Op: op})
	p.scan(j, hi, 0)
}

// refresh classifies REFRESH MATERIALIZED VIEW [CONCURRENTLY] name.
func (p *parser) refresh(lo, hi int) {
	i := lo + 1
	if p.kw(i, hi) != kwMATERIALIZED || p.kw(i+1, hi) != kwVIEW {
		p.wholeDB()
		return
	}
	i += 2
	if p.kw(i, hi) == kwCONCURRENTLY {
		i++
	}
	n, _, ok := p.name(i, hi)
	if !ok {
		p.wholeDB()
		return
	}
	p.addWrite(Write{Table: n, Op: Refresh})
}
