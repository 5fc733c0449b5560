package classify

import "strings"

// tref is a table reference in a FROM-like list.
type tref struct {
	name  Name
	alias string
	table bool // a named table (not a subquery or a function call)
}

// target is a written table while its statement is parsed.
type target struct {
	name  Name
	alias string
	w     int // index of its Write in p.st.Writes
}

// notAlias reports whether a keyword ends a table reference rather than
// naming its alias.
func notAlias(k kw) bool {
	switch k {
	case kwSET, kwWHERE, kwON, kwUSING, kwJOIN, kwINNER, kwLEFT, kwRIGHT, kwFULL, kwCROSS,
		kwNATURAL, kwSTRAIGHT_JOIN, kwOUTER, kwUSE, kwIGNORE, kwFORCE, kwPARTITION, kwINDEXED,
		kwNOT, kwRETURNING, kwORDER, kwLIMIT, kwFROM, kwVALUES, kwVALUE, kwSELECT, kwDEFAULT,
		kwOVERRIDING, kwWITH, kwAS, kwUNION, kwEXCEPT, kwINTERSECT, kwGROUP, kwHAVING, kwWINDOW,
		kwFOR, kwLOCK, kwDO, kwINTO, kwLATERAL, kwONLY, kwOFFSET, kwFETCH, kwTABLE, kwWHEN,
		kwTHEN, kwELSE, kwEND, kwINSERT, kwUPDATE, kwDELETE, kwREPLACE, kwMERGE, kwTRUNCATE,
		kwALTER, kwDROP, kwCREATE, kwRENAME, kwCALL, kwEXEC, kwEXECUTE, kwCOPY, kwLOAD:
		return true
	}
	return false
}

// notTable reports whether a keyword cannot be a table's unquoted name in
// a FROM-like list.
func notTable(k kw) bool {
	switch k {
	case kwSET, kwWHERE, kwON, kwUSING, kwJOIN, kwINNER, kwLEFT, kwRIGHT, kwFULL, kwCROSS,
		kwNATURAL, kwSTRAIGHT_JOIN, kwOUTER, kwSELECT, kwVALUES, kwFROM, kwRETURNING, kwORDER,
		kwLIMIT, kwWITH, kwAS, kwONLY, kwLATERAL, kwDEFAULT:
		return true
	}
	return false
}

// aliasAt parses [AS] alias [(cols)] (and Postgres' "*" after a table name)
// at i.
func (p *parser) aliasAt(i, hi int) (string, int) {
	if p.isOp(i, hi, "*") {
		i++
	}
	alias := ""
	switch {
	case p.kw(i, hi) == kwAS:
		if !p.isIdent(i+1, hi) || p.startsStatement(i+1, hi) {
			// AS UPDATE …: not an alias idmap can trust; what follows is
			// scanned as text.
			return "", i + 1
		}
		alias = p.fold(&p.toks[i+1])
		i += 2
	case p.is(i, hi, tQuoted) || p.is(i, hi, tWord) && !notAlias(p.toks[i].kw):
		alias = p.fold(&p.toks[i])
		i++
	default:
		return "", i
	}
	return alias, i
}

// tableRefs parses a FROM-like list of table references in [lo, hi):
// names with aliases, joins, subqueries, parenthesised joins. Subqueries
// are classified, everything else is scanned.
//
// A factor that is not understood adds a tref with an empty name.
func (p *parser) tableRefs(lo, hi int) []tref {
	if p.depth > maxDepth {
		p.wholeDB()
		return nil
	}
	p.depth++
	defer func() { p.depth-- }()
	var refs []tref
	expect := true
	for i := lo; i < hi; {
		if expect {
			expect = false
			for k := p.kw(i, hi); k == kwLATERAL || k == kwONLY; k = p.kw(i, hi) {
				i++
			}
			if p.is(i, hi, tLParen) {
				end := p.close(i, hi)
				if p.startsStatement(i+1, end-1) {
					p.stmt(i+1, end-1)
				} else {
					refs = append(refs, p.tableRefs(i+1, end-1)...)
				}
				_, i = p.aliasAt(end, hi)
				continue
			}
			if p.is(i, hi, tWord) && notTable(p.toks[i].kw) {
				refs = append(refs, tref{})
				continue
			}
			if n, j, ok := p.name(i, hi); ok {
				if p.is(j, hi, tLParen) { // a table function
					p.scan(j, p.close(j, hi), 0)
					_, i = p.aliasAt(p.close(j, hi), hi)
					refs = append(refs, tref{name: n})
					continue
				}
				alias, k := p.aliasAt(j, hi)
				refs = append(refs, tref{name: n, alias: alias, table: true})
				i = k
				continue
			}
			refs = append(refs, tref{})
			continue
		}
		switch {
		case p.is(i, hi, tComma):
			expect = true
			i++
		case p.kw(i, hi) == kwJOIN || p.kw(i, hi) == kwSTRAIGHT_JOIN:
			expect = true
			i++
		default:
			end := i + 1
			for end < hi && !p.is(end, hi, tComma) && p.kw(end, hi) != kwJOIN && p.kw(end, hi) != kwSTRAIGHT_JOIN {
				if p.is(end, hi, tLParen) {
					end = p.close(end, hi)
					continue
				}
				end++
			}
			p.scan(i, end, 0)
			i = end
		}
	}
	return refs
}

// sameIdent compares two identifiers as the dialect does for qualifiers:
// SQLite folds case; the others compare exactly (names are already folded
// for Postgres, and a MySQL qualifier that differs only in case is left
// unmatched, which only widens).
func (p *parser) sameIdent(a, b string) bool {
	if p.d == SQLite {
		return strings.EqualFold(a, b)
	}
	return a == b
}

// matches reports whether a column qualifier (qs.qual) names the target.
func (p *parser) matches(t *target, qual, qs string) bool {
	if t.alias != "" {
		return qs == "" && p.sameIdent(qual, t.alias)
	}
	if !p.sameIdent(qual, t.name.Table) {
		return false
	}
	return qs == "" || t.name.Schema == "" || p.sameIdent(qs, t.name.Schema)
}

// colRefs is a column reference list of a conjunct or assignment.
type colRefs struct {
	cols  []string
	quals [][2]string // qualifier, its schema
}

// owners returns the targets that every reference in cr can belong to:
// all of them for unqualified references, else those the qualifiers name.
func (p *parser) owners(cr *colRefs, ts []target) []int {
	var out []int
	for ti := range ts {
		ok := true
		for _, q := range cr.quals {
			if q[0] != "" && !p.matches(&ts[ti], q[0], q[1]) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, ti)
		}
	}
	return out
}

// colList parses a parenthesised list of column references whose "(" is
// at i.
func (p *parser) colList(i, hi int) (colRefs, int, bool) {
	var cr colRefs
	if !p.is(i, hi, tLParen) {
		return cr, i, false
	}
	end := p.close(i, hi)
	j := i + 1
	for {
		col, q, qs, k, ok := p.colRef(j, end-1)
		if !ok {
			return cr, i, false
		}
		cr.cols = append(cr.cols, col)
		cr.quals = append(cr.quals, [2]string{q, qs})
		j = k
		if j == end-1 {
			break
		}
		if !p.is(j, end-1, tComma) {
			return cr, i, false
		}
		j++
	}
	return cr, end, true
}

// valueTuple parses ( v, v, … ) of exactly n plain values at i.
func (p *parser) valueTuple(i, hi, n int) ([]Value, int, bool) {
	if !p.is(i, hi, tLParen) {
		return nil, i, false
	}
	end := p.close(i, hi)
	vals := make([]Value, 0, n)
	j := i + 1
	for {
		v, k, ok := p.value(j, end-1)
		if !ok {
			return nil, i, false
		}
		vals = append(vals, v)
		j = k
		if j == end-1 {
			break
		}
		if !p.is(j, end-1, tComma) {
			return nil, i, false
		}
		j++
	}
	if len(vals) != n {
		return nil, i, false
	}
	return vals, end, true
}

// where classifies a WHERE clause [lo, hi) of a write to ts.
func (p *parser) where(lo, hi int, ts []target) {
	p.scan(lo, hi, 0)
	p.conjuncts(lo, hi, ts, 0)
}

// conjuncts splits [lo, hi) into top-level AND conjuncts and records the
// equality ones; a top-level OR gives nothing.
func (p *parser) conjuncts(lo, hi int, ts []target, depth int) {
	if depth > maxDepth {
		return
	}
	type rng struct{ lo, hi int }
	var parts []rng
	// The AND of x BETWEEN a AND b, and an AND or OR inside CASE … END,
	// do not split the clause.
	caseDepth := 0
	between := false
	start := lo
	for i := lo; i < hi; i++ {
		t := &p.toks[i]
		switch t.kind {
		case tLParen:
			i = p.close(i, hi) - 1
		case tOp:
			if t.text == "||" && p.d != Postgres && p.d != SQLite {
				return // MySQL's OR
			}
		case tWord:
			switch t.kw {
			case kwOR, kwXOR:
				if caseDepth == 0 {
					return
				}
			case kwCASE:
				caseDepth++
			case kwEND:
				if caseDepth > 0 {
					caseDepth--
				}
			case kwBETWEEN:
				between = true
			case kwAND:
				if caseDepth > 0 {
					continue
				}
				if between {
					between = false
					continue
				}
				parts = append(parts, rng{start, i})
				start = i + 1
			}
		}
	}
	parts = append(parts, rng{start, hi})
	for _, r := range parts {
		if r.lo < r.hi && p.is(r.lo, r.hi, tLParen) && p.close(r.lo, r.hi) == r.hi && !p.is(r.lo+1, r.hi, tComma) {
			// ((a = 1 AND b = 2)): look inside, unless it is a tuple.
			if _, _, ok := p.colList(r.lo, r.hi); !ok {
				p.conjuncts(r.lo+1, r.hi-1, ts, depth+1)
				continue
			}
		}
		p.conjunct(r.lo, r.hi, ts)
	}
}

// conjunct records one conjunct [lo, hi) if it is an equality on columns.
func (p *parser) conjunct(lo, hi int, ts []target) {
	var cr colRefs
	var vals [][]Value
	switch {
	case p.is(lo, hi, tLParen):
		c, j, ok := p.colList(lo, hi)
		if !ok {
			return
		}
		cr = c
		n := len(cr.cols)
		switch {
		case p.isEq(j, hi):
			row, k, ok := p.valueTuple(j+1, hi, n)
			if !ok || k != hi {
				return
			}
			vals = [][]Value{row}
		case p.kw(j, hi) == kwIN:
			vs, ok := p.inList(j+1, hi, n)
			if !ok {
				return
			}
			vals = vs
		default:
			return
		}
	default:
		if col, q, qs, j, ok := p.colRef(lo, hi); ok {
			cr = colRefs{cols: []string{col}, quals: [][2]string{{q, qs}}}
			switch {
			case p.isEq(j, hi) && p.d == Postgres && p.kw(j+1, hi) == kwANY:
				v, ok := p.anyParam(j+2, hi)
				if !ok {
					return
				}
				vals = [][]Value{{v}}
			case p.isEq(j, hi):
				v, k, ok := p.value(j+1, hi)
				if !ok || k != hi {
					return
				}
				vals = [][]Value{{v}}
			case p.kw(j, hi) == kwIN:
				vs, ok := p.inList(j+1, hi, 1)
				if !ok {
					return
				}
				vals = vs
			default:
				return
			}
			break
		}
		v, j, ok := p.value(lo, hi)
		if !ok || !p.isEq(j, hi) {
			return
		}
		col, q, qs, k, ok := p.colRef(j+1, hi)
		if !ok || k != hi {
			return
		}
		cr = colRefs{cols: []string{col}, quals: [][2]string{{q, qs}}}
		vals = [][]Value{{v}}
	}
	for _, ti := range p.owners(&cr, ts) {
		w := &p.st.Writes[ts[ti].w]
		w.Where = append(w.Where, Cond{Columns: cr.cols, Values: vals})
	}
}

// anyParam parses the ($1) of PostgreSQL's col = ANY($1), ending at hi: one
// placeholder, whose argument is an array of the condition's values.
// Anything else in the parentheses (a subquery, an ARRAY[…] or a cast
// that idmap does not read) gives no condition.
func (p *parser) anyParam(i, hi int) (Value, bool) {
	if !p.is(i, hi, tLParen) || p.close(i, hi) != hi {
		return Value{}, false
	}
	v, k, ok := p.value(i+1, hi-1)
	if !ok || k != hi-1 || (v.Arg <= 0 && v.Named == "") {
		return Value{}, false
	}
	v.Array = true
	return v, true
}

// inList parses ( v, … ) or ( (v, …), … ) of n-tuples that ends at hi.
func (p *parser) inList(i, hi, n int) ([][]Value, bool) {
	if !p.is(i, hi, tLParen) || p.close(i, hi) != hi {
		return nil, false
	}
	end := hi - 1
	vals := [][]Value{}
	j := i + 1
	for j < end {
		if n == 1 {
			if v, k, ok := p.value(j, end); ok {
				vals = append(vals, []Value{v})
				j = k
			} else if row, k, ok := p.valueTuple(j, end, 1); ok {
				vals = append(vals, row)
				j = k
			} else {
				return nil, false
			}
		} else {
			row, k, ok := p.valueTuple(j, end, n)
			if !ok {
				return nil, false
			}
			vals = append(vals, row)
			j = k
		}
		if j == end {
			break
		}
		if !p.is(j, end, tComma) || j+1 == end {
			return nil, false
		}
		j++
	}
	return vals, true
}

// items splits [lo, hi) at top-level commas.
func (p *parser) items(lo, hi int) [][2]int {
	var out [][2]int
	start := lo
	for i := lo; i < hi; i++ {
		switch {
		case p.is(i, hi, tLParen):
			i = p.close(i, hi) - 1
		case p.is(i, hi, tComma):
			out = append(out, [2]int{start, i})
			start = i + 1
		}
	}
	if start < hi || len(out) > 0 {
		out = append(out, [2]int{start, hi})
	}
	return out
}

// assigns records the assignments of a SET list [lo, hi) on ts.
func (p *parser) assigns(lo, hi int, ts []target) {
	p.scan(lo, hi, 0)
	for _, it := range p.items(lo, hi) {
		a, b := it[0], it[1]
		eq := a
		for eq < b && !p.isEq(eq, b) && !p.isOp(eq, b, ":=") {
			if p.is(eq, b, tLParen) {
				eq = p.close(eq, b)
				continue
			}
			eq++
		}
		var cr colRefs
		var vals []Value
		ok := eq < b
		if ok {
			if p.is(a, eq, tLParen) {
				var j int
				cr, j, ok = p.colList(a, eq)
				ok = ok && j == eq
				if ok {
					if row, k, ok2 := p.valueTuple(eq+1, b, len(cr.cols)); ok2 && k == b {
						vals = row
					}
				}
			} else {
				col, q, qs, j, ok2 := p.colRef(a, eq)
				ok = ok2 && j == eq
				cr = colRefs{cols: []string{col}, quals: [][2]string{{q, qs}}}
				vals = []Value{p.exprValue(eq+1, b)}
			}
		}
		if !ok {
			// Not understood: any column may change.
			for _, t := range ts {
				w := &p.st.Writes[t.w]
				w.Set = append(w.Set, Assign{Value: Value{Expr: true}})
			}
			continue
		}
		owners := p.owners(&cr, ts)
		if len(owners) == 0 { // an unknown qualifier (a composite field?)
			for ti := range ts {
				owners = append(owners, ti)
			}
			for k := range cr.quals {
				if cr.quals[k][0] != "" && cr.quals[k][1] == "" {
					cr.cols[k] = cr.quals[k][0]
				}
			}
			vals = nil
		}
		for _, ti := range owners {
			w := &p.st.Writes[ts[ti].w]
			for k, col := range cr.cols {
				v := Value{Expr: true}
				if vals != nil {
					v = vals[k]
				}
				w.Set = append(w.Set, Assign{Column: col, Value: v, Plain: !v.Expr})
			}
		}
	}
}

// tail handles the clauses after WHERE: RETURNING sets Returning,
// everything is scanned.
func (p *parser) tail(i, hi int, ts []target) {
	if p.find(i, hi, kwRETURNING) < hi {
		for _, t := range ts {
			p.st.Writes[t.w].Returning = true
		}
	}
	p.scan(i, hi, 0)
}

// isConflictAction reports whether k follows OR in SQLite's INSERT OR …
// and UPDATE OR ….
func isConflictAction(k kw) bool {
	return k == kwROLLBACK || k == kwABORT || k == kwREPLACE || k == kwIGNORE || k == kwFAIL
}

// update classifies UPDATE.
func (p *parser) update(lo, hi int) {
	i := lo + 1
	orReplace := false
	for {
		switch p.kw(i, hi) {
		case kwLOW_PRIORITY, kwIGNORE:
			i++
			continue
		case kwOR:
			if !isConflictAction(p.kw(i+1, hi)) {
				p.wholeDB()
			}
			if p.kw(i+1, hi) == kwREPLACE {
				orReplace = true
			}
			i += 2
			continue
		}
		break
	}
	s := p.find(i, hi, kwSET)
	if s == hi {
		p.wholeDB()
		p.scan(i, hi, 0)
		return
	}
	var ts []target
	for _, r := range p.tableRefs(i, s) {
		if r.name.Table == "" {
			p.wholeDB()
			continue
		}
		// Table functions too: reporting them only widens.
		ts = append(ts, target{name: r.name, alias: r.alias, w: p.addWrite(Write{Table: r.name, Op: Update})})
	}
	if len(ts) == 0 {
		p.wholeDB()
	}
	e := p.find(s+1, hi, kwFROM, kwWHERE, kwRETURNING, kwORDER, kwLIMIT)
	p.assigns(s+1, e, ts)
	i = e
	if p.kw(i, hi) == kwFROM {
		f := p.find(i+1, hi, kwWHERE, kwRETURNING, kwORDER, kwLIMIT)
		p.tableRefs(i+1, f)
		i = f
	}
	if p.kw(i, hi) == kwWHERE {
		f := p.find(i+1, hi, kwRETURNING, kwORDER, kwLIMIT)
		if orReplace {
			// UPDATE OR REPLACE deletes the rows its new values conflict with.
			p.scan(i+1, f, 0)
		} else {
			p.where(i+1, f, ts)
		}
		i = f
	}
	p.tail(i, hi, ts)
}

// delete classifies DELETE, including MySQL's multi-table forms.
func (p *parser) delete(lo, hi int) {
	i := lo + 1
	for k := p.kw(i, hi); k == kwLOW_PRIORITY || k == kwQUICK || k == kwIGNORE; k = p.kw(i, hi) {
		i++
	}
	var tlo, thi, rlo, rhi int
	if p.kw(i, hi) == kwFROM {
		tlo = i + 1
		thi = p.find(tlo, hi, kwUSING, kwWHERE, kwRETURNING, kwORDER, kwLIMIT)
		rlo, rhi = thi, thi
		if p.kw(thi, hi) == kwUSING {
			rlo = thi + 1
			rhi = p.find(rlo, hi, kwWHERE, kwRETURNING, kwORDER, kwLIMIT)
		}
	} else {
		tlo = i
		thi = p.find(tlo, hi, kwFROM)
		if thi == hi {
			p.wholeDB()
			p.scan(i, hi, 0)
			return
		}
		rlo = thi + 1
		rhi = p.find(rlo, hi, kwWHERE, kwRETURNING, kwORDER, kwLIMIT)
	}
	written := p.tableRefs(tlo, thi)
	refs := p.tableRefs(rlo, rhi)
	var ts []target
	for _, t := range written {
		if t.name.Table == "" {
			p.wholeDB()
			continue
		}
		if t.name.Schema == "" && t.alias == "" {
			// MySQL: a target may be an alias defined in the references.
			for _, r := range refs {
				if r.table && r.alias != "" && p.sameIdent(r.alias, t.name.Table) {
					ts = append(ts, target{name: r.name, alias: r.alias, w: p.addWrite(Write{Table: r.name, Op: Delete})})
				}
			}
		}
		ts = append(ts, target{name: t.name, alias: t.alias, w: p.addWrite(Write{Table: t.name, Op: Delete})})
	}
	if len(ts) == 0 {
		p.wholeDB()
	}
	i = rhi
	if p.kw(i, hi) == kwWHERE {
		f := p.find(i+1, hi, kwRETURNING, kwORDER, kwLIMIT)
		p.where(i+1, f, ts)
		i = f
	}
	p.tail(i, hi, ts)
}

// merge classifies MERGE INTO target USING … WHEN … THEN ….
func (p *parser) merge(lo, hi int) {
	i := lo + 1
	if p.kw(i, hi) == kwINTO {
		i++
	}
	for p.kw(i, hi) == kwONLY {
		i++
	}
	n, j, ok := p.name(i, hi)
	if !ok {
		p.wholeDB()
		p.scan(i, hi, scanMerge)
		return
	}
	w := p.addWrite(Write{Table: n, Op: Merge})
	_, j = p.aliasAt(j, hi)
	if p.find(j, hi, kwRETURNING) < hi {
		p.st.Writes[w].Returning = true
	}
	p.scan(j, hi, scanMerge)
}

// insert classifies INSERT and REPLACE.
func (p *parser) insert(lo, hi int) {
	op := Insert
	if p.kw(lo, hi) == kwREPLACE {
		op = Replace
	}
	i := lo + 1
	for {
		switch p.kw(i, hi) {
		case kwLOW_PRIORITY, kwDELAYED, kwHIGH_PRIORITY, kwIGNORE:
			i++
			continue
		case kwOR:
			if !isConflictAction(p.kw(i+1, hi)) {
				p.wholeDB()
			}
			if p.kw(i+1, hi) == kwREPLACE && op == Insert {
				op = Upsert
			}
			i += 2
			continue
		}
		break
	}
	if p.kw(i, hi) == kwINTO {
		i++
	}
	n, j, ok := p.name(i, hi)
	if !ok || p.is(i, hi, tWord) && (p.toks[i].kw == kwSELECT || p.toks[i].kw == kwVALUES) {
		p.wholeDB()
		p.scan(i, hi, 0)
		return
	}
	wi := p.addWrite(Write{Table: n, Op: op})
	t := target{name: n, w: wi}
	i = j
	if p.kw(i, hi) == kwAS && p.isIdent(i+1, hi) && !p.startsStatement(i+1, hi) {
		t.alias = p.fold(&p.toks[i+1])
		i += 2
	}
	if p.kw(i, hi) == kwPARTITION && p.is(i+1, hi, tLParen) {
		i = p.close(i+1, hi)
	}
	var cols []string
	if p.is(i, hi, tLParen) && !p.startsStatement(i+1, hi) {
		end := p.close(i, hi)
		if cr, k, ok := p.colList(i, hi); ok && k == end {
			cols = cr.cols
		} else if end == i+2 {
			cols = []string{} // MySQL INSERT INTO t () VALUES ()
		} else {
			p.scan(i+1, end-1, 0)
		}
		p.st.Writes[wi].Columns = cols
		i = end
	}
	// OVERRIDING {SYSTEM | USER} VALUE (PostgreSQL).
	if p.kw(i, hi) == kwOVERRIDING {
		i = min(i+3, hi)
	}
	ts := []target{t}
	switch k := p.kw(i, hi); {
	case k == kwVALUES || k == kwVALUE:
		rows, j := p.valueRows(i+1, hi)
		if cols != nil {
			p.st.Writes[wi].Values = rows
		}
		i = j
	case k == kwDEFAULT && p.kw(i+1, hi) == kwVALUES:
		i += 2
	case k == kwSET: // MySQL INSERT … SET a = 1, …
		end := p.findPair(i+1, hi, kwON, kwDUPLICATE)
		end = min(end, p.find(i+1, end, kwRETURNING))
		p.assigns(i+1, end, ts)
		// The assignments are the inserted row, not updates: they move
		// from Set to Columns and Values, unless one was not understood.
		w := &p.st.Writes[wi]
		set := w.Set
		w.Set = nil
		w.Columns = []string{}
		row := []Value{}
		for _, a := range set {
			if a.Column == "" {
				w.Columns, row = nil, nil
				break
			}
			w.Columns = append(w.Columns, a.Column)
			row = append(row, a.Value)
		}
		if row != nil {
			w.Values = [][]Value{row}
		}
		i = end
	case p.mainStart(i, hi) || k == kwWITH:
		end := min(p.findPair(i, hi, kwON, kwDUPLICATE), p.findPair(i, hi, kwON, kwCONFLICT), p.find(i, hi, kwRETURNING))
		p.stmt(i, end)
		i = end
	default:
		p.wholeDB()
	}
	p.insertTail(i, hi, ts, op)
}

// valueRows parses (…), (…), … or ROW(…), … at i.
func (p *parser) valueRows(i, hi int) ([][]Value, int) {
	rows := [][]Value{}
	for {
		if p.kw(i, hi) == kwROW && p.is(i+1, hi, tLParen) {
			i++
		}
		if !p.is(i, hi, tLParen) {
			return rows, i
		}
		end := p.close(i, hi)
		p.scan(i+1, end-1, 0)
		row := []Value{}
		for _, it := range p.items(i+1, end-1) {
			row = append(row, p.exprValue(it[0], it[1]))
		}
		rows = append(rows, row)
		i = end
		if !p.is(i, hi, tComma) {
			return rows, i
		}
		i++
	}
}

// insertTail handles what follows an INSERT's rows: MySQL's row alias, ON
// DUPLICATE KEY UPDATE, ON CONFLICT …, RETURNING.
func (p *parser) insertTail(i, hi int, ts []target, op Op) {
	wi := ts[0].w
	updates := 0
	var conflict []string
	for i < hi {
		switch {
		case p.kw(i, hi) == kwAS && p.isIdent(i+1, hi): // MySQL VALUES (…) AS new [(cols)]
			i += 2
			if p.is(i, hi, tLParen) {
				i = p.close(i, hi)
			}
		case p.kw(i, hi) == kwON && p.kw(i+1, hi) == kwDUPLICATE && p.kw(i+2, hi) == kwKEY && p.kw(i+3, hi) == kwUPDATE:
			end := p.find(i+4, hi, kwRETURNING)
			p.assigns(i+4, end, ts)
			updates += 2 // any unique key
			i = end
		case p.kw(i, hi) == kwON && p.kw(i+1, hi) == kwCONFLICT:
			i += 2
			var target []string
			if p.is(i, hi, tLParen) {
				end := p.close(i, hi)
				if cr, k, ok := p.colList(i, hi); ok && k == end {
					target = cr.cols
				} else {
					p.scan(i+1, end-1, 0)
				}
				i = end
				if p.kw(i, hi) == kwWHERE {
					d := p.find(i+1, hi, kwDO)
					p.scan(i+1, d, 0)
					i = d
				}
			} else if p.kw(i, hi) == kwON && p.kw(i+1, hi) == kwCONSTRAINT {
				i += 3
			}
			if p.kw(i, hi) != kwDO {
				p.wholeDB()
				p.scan(i, hi, 0)
				return
			}
			i++
			switch {
			case p.kw(i, hi) == kwNOTHING:
				i++
			case p.kw(i, hi) == kwUPDATE && p.kw(i+1, hi) == kwSET:
				end := min(p.findPair(i+2, hi, kwON, kwCONFLICT), p.find(i+2, hi, kwRETURNING))
				w := p.find(i+2, end, kwWHERE)
				p.assigns(i+2, w, ts)
				p.scan(w, end, 0)
				updates++
				conflict = target
				i = end
			default:
				p.wholeDB()
				p.scan(i, hi, 0)
				return
			}
		case p.kw(i, hi) == kwRETURNING:
			p.st.Writes[wi].Returning = true
			p.scan(i+1, hi, 0)
			i = hi
		default:
			p.wholeDB()
			p.scan(i, hi, 0)
			i = hi
		}
	}
	// updates counts the update clauses, ON DUPLICATE KEY UPDATE as two:
	// Conflict names the target of one ON CONFLICT (cols) DO UPDATE only.
	// Several clauses (SQLite), MySQL's form and INSERT OR REPLACE
	// conflict on any unique key: Conflict stays nil.
	if updates > 0 {
		w := &p.st.Writes[wi]
		if w.Op == Insert {
			w.Op = Upsert
		}
		if updates == 1 && w.Op == Upsert && op == Insert {
			w.Conflict = conflict
		}
	}
}
