package recognize

// classifier reads one statement: toks, all from src.
type classifier struct {
	src  string
	toks []token
}

// kw reports whether toks[i] exists and is the unquoted keyword k.
func (c *classifier) kw(i int, k string) bool {
	return i >= 0 && i < len(c.toks) && isKw(c.src, c.toks[i], k)
}

// is reports whether toks[i] exists and is of kind k.
func (c *classifier) is(i int, k tokKind) bool {
	return i >= 0 && i < len(c.toks) && c.toks[i].kind == k
}

// isStar reports whether toks[i] is the operator "*".
func (c *classifier) isStar(i int) bool {
	return c.is(i, tkOp) && c.toks[i].end-c.toks[i].pos == 1 && c.src[c.toks[i].pos] == '*'
}

// closeParen returns the index of the parenthesis that closes toks[i].
func (c *classifier) closeParen(i int) int {
	depth := 0
	for j := i; j < len(c.toks); j++ {
		switch c.toks[j].kind {
		case tkLParen, tkLBracket:
			depth++
		case tkRParen, tkRBracket:
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return len(c.toks)
}

// find returns the index of the first keyword k at parenthesis depth 0 from
// toks[i] on, or -1.
func (c *classifier) find(i int, k string) int {
	depth := 0
	for j := i; j < len(c.toks); j++ {
		switch c.toks[j].kind {
		case tkLParen, tkLBracket:
			depth++
		case tkRParen, tkRBracket:
			depth--
		case tkIdent:
			if depth == 0 && isKw(c.src, c.toks[j], k) {
				return j
			}
		}
	}
	return -1
}

// name reads a qualified name at toks[i]; on failure it sets AllTables.
func (c *classifier) name(st *Statement, i int) (Table, int, bool) {
	t, j, ok := qualifiedName(c.src, c.toks, i)
	if !ok {
		st.AllTables = true
	}
	return t, j, ok
}

// addName reads a qualified name at toks[i] into st.Tables.
func (c *classifier) addName(st *Statement, i int) (int, bool) {
	t, j, ok := c.name(st, i)
	if ok {
		st.Tables = addTable(st.Tables, t)
	}
	return j, ok
}

// classifyStatement fills st for the statement toks. single is true when the
// text has no other statement, the condition for a Lookup.
func classifyStatement(st *Statement, src string, toks []token, single bool) {
	c := classifier{src: src, toks: toks}
	explained := false
	// EXPLAIN ANALYZE runs its statement: classify that one.
	for c.kw(0, "explain") {
		i := 1
		analyze := false
		if c.is(1, tkLParen) {
			// EXPLAIN (option [value], ...): an option name may also be
			// quoted ("analyze") or a string; a name written with escapes
			// (U&"\0061nalyze", E'...') may be ANALYZE too.
			end := c.closeParen(1)
			for j := 2; j < end; j++ {
				switch t := c.toks[j]; t.kind {
				case tkUIdent, tkOtherString, tkEString, tkDollar:
					analyze = true
				default:
					analyze = analyze || c.namedAnalyze(t)
				}
			}
			i = end + 1
		} else {
			for c.kw(i, "analyze") || c.kw(i, "analyse") || c.kw(i, "verbose") {
				if !c.kw(i, "verbose") {
					analyze = true
				}
				i++
			}
		}
		if !analyze {
			st.Kind = KindRead
			return
		}
		if i >= len(c.toks) {
			c.toks = c.toks[:0]
			break
		}
		c.toks = c.toks[i:]
		explained = true
	}
	c.dispatch(st, single && !explained)
	if explained {
		st.Lookup = nil
		st.Write = nil
	}
}

// namedAnalyze reports whether t spells ANALYZE or ANALYSE in any case, as a
// keyword, a quoted identifier or a string.
func (c *classifier) namedAnalyze(t token) bool {
	var w string
	switch t.kind {
	case tkIdent:
		w = c.src[t.pos:t.end]
	case tkQIdent, tkString:
		w = c.src[t.pos+1 : t.end-1]
	default:
		return false
	}
	return eqFold(w, "analyze") || eqFold(w, "analyse")
}

func (c *classifier) dispatch(st *Statement, single bool) {
	if len(c.toks) == 0 {
		st.Kind, st.AllTables = KindUnknown, true
		return
	}
	if c.is(0, tkLParen) {
		c.query(st, 0)
		return
	}
	if !c.is(0, tkIdent) {
		st.Kind, st.AllTables = KindUnknown, true
		return
	}
	switch {
	case c.kw(0, "select"):
		c.query(st, 0)
		if single && st.Kind == KindRead && !st.Locking {
			st.Lookup = parseLookup(c.src, c.toks)
		}
	case c.kw(0, "insert"), c.kw(0, "update"), c.kw(0, "delete"):
		c.query(st, 0)
		if st.Kind == KindWrite && !st.AllTables && len(st.Tables) == 1 {
			st.Write = parseWrite(c.src, c.toks)
		}
	case c.kw(0, "with"), c.kw(0, "values"), c.kw(0, "table"), c.kw(0, "merge"):
		c.query(st, 0)
	case c.kw(0, "declare"):
		// DECLARE name ... CURSOR ... FOR query: the query runs as it is
		// fetched, and may lock.
		c.query(st, 0)
	case c.kw(0, "show"), c.kw(0, "fetch"), c.kw(0, "move"), c.kw(0, "close"):
		st.Kind = KindRead
	case c.kw(0, "copy"):
		c.copy(st)
	case c.kw(0, "truncate"):
		c.truncate(st)
	case c.kw(0, "begin"), c.kw(0, "start"), c.kw(0, "commit"), c.kw(0, "end"),
		c.kw(0, "rollback"), c.kw(0, "abort"), c.kw(0, "savepoint"), c.kw(0, "release"):
		c.tx(st)
	case c.kw(0, "prepare"):
		if c.kw(1, "transaction") {
			st.Kind, st.Tx = KindTx, TxOther
		} else {
			// PREPARE name AS statement does not run the statement.
			st.Kind = KindSession
		}
	case c.kw(0, "set"), c.kw(0, "reset"), c.kw(0, "discard"), c.kw(0, "listen"),
		c.kw(0, "notify"), c.kw(0, "unlisten"), c.kw(0, "deallocate"):
		st.Kind = KindSession
	case c.kw(0, "create"):
		c.create(st)
	case c.kw(0, "alter"):
		c.alter(st)
	case c.kw(0, "drop"):
		c.drop(st)
	case c.kw(0, "comment"):
		c.comment(st)
	case c.kw(0, "grant"), c.kw(0, "revoke"):
		c.grant(st)
	case c.kw(0, "security"):
		st.Kind = KindDDL
		if on := c.find(1, "on"); on > 0 && c.kw(on+1, "table") {
			c.addName(st, on+2)
		} else {
			st.AllTables = true
		}
	case c.kw(0, "refresh"):
		st.Kind = KindDDL
		i := 1
		if c.kw(i, "materialized") && c.kw(i+1, "view") {
			i += 2
			if c.kw(i, "concurrently") {
				i++
			}
			c.addName(st, i)
		} else {
			st.AllTables = true
		}
	case c.kw(0, "reindex"), c.kw(0, "cluster"), c.kw(0, "vacuum"), c.kw(0, "analyze"),
		c.kw(0, "analyse"), c.kw(0, "checkpoint"):
		c.maintenance(st)
	case c.kw(0, "import"), c.kw(0, "reassign"):
		st.Kind, st.AllTables = KindDDL, true
	default:
		// DO, CALL, EXECUTE, LOCK, LOAD and everything not recognized.
		st.Kind, st.AllTables = KindUnknown, true
	}
}

// query classifies a statement that reads and may write through
// data-modifying WITH: SELECT, VALUES, TABLE, WITH, INSERT, UPDATE, DELETE,
// MERGE, DECLARE. It looks at every INSERT, UPDATE, DELETE and MERGE keyword
// in the text, wherever it is: a column named like one of them only makes the
// answer more cautious.
func (c *classifier) query(st *Statement, from int) {
	wrote, into := false, false
	for i := from; i < len(c.toks); i++ {
		t := c.toks[i]
		if t.kind != tkIdent {
			continue
		}
		w := c.src[t.pos:t.end]
		if len(w) < 4 || len(w) > 6 {
			continue
		}
		switch {
		case eqFold(w, "insert"):
			if c.kw(i-1, "then") { // MERGE ... THEN INSERT
				continue
			}
			wrote = true
			c.target(st, i+1, "into", false)
		case eqFold(w, "update"):
			if c.kw(i-1, "for") || c.kw(i-1, "key") && c.kw(i-2, "no") && c.kw(i-3, "for") {
				st.Locking = true
				continue
			}
			if c.kw(i-1, "do") || c.kw(i-1, "then") { // ON CONFLICT DO UPDATE, MERGE
				continue
			}
			wrote = true
			c.target(st, i+1, "", true)
		case eqFold(w, "delete"):
			if c.kw(i-1, "then") { // MERGE ... THEN DELETE
				continue
			}
			wrote = true
			c.target(st, i+1, "from", true)
		case eqFold(w, "merge"):
			wrote = true
			c.target(st, i+1, "into", true)
		case eqFold(w, "share"):
			if c.kw(i-1, "for") || c.kw(i-1, "key") && c.kw(i-2, "for") {
				st.Locking = true
			}
		case eqFold(w, "into"):
			if c.kw(i-1, "insert") || c.kw(i-1, "merge") {
				continue
			}
			// SELECT ... INTO [TEMP | UNLOGGED ...] [TABLE] name creates a table.
			into = true
			j := i + 1
			if c.kw(j, "local") || c.kw(j, "global") {
				j++
			}
			if c.kw(j, "temp") || c.kw(j, "temporary") || c.kw(j, "unlogged") {
				j++
			}
			if c.kw(j, "table") {
				j++
			}
			c.addName(st, j)
		}
	}
	switch {
	case into:
		st.Kind = KindDDL
	case wrote:
		st.Kind = KindWrite
	default:
		st.Kind = KindRead
	}
}

// target reads the table written by the DML keyword before toks[i]:
// [need] [ONLY] name.
func (c *classifier) target(st *Statement, i int, need string, only bool) {
	if need != "" {
		if !c.kw(i, need) {
			st.AllTables = true
			return
		}
		i++
	}
	if only && c.kw(i, "only") {
		i++
	}
	c.addName(st, i)
}

// copy classifies COPY: COPY name FROM writes, COPY name TO and COPY (query)
// TO read (unless the query writes).
func (c *classifier) copy(st *Statement) {
	if c.is(1, tkLParen) {
		end := c.closeParen(1)
		inner := classifier{src: c.src, toks: c.toks[2:end]}
		if !(inner.kw(0, "select") || inner.kw(0, "values") || inner.kw(0, "table") ||
			inner.kw(0, "with") || inner.kw(0, "insert") || inner.kw(0, "update") ||
			inner.kw(0, "delete") || inner.kw(0, "merge") || inner.is(0, tkLParen)) {
			st.Kind, st.AllTables = KindUnknown, true
			return
		}
		inner.query(st, 0)
		return
	}
	i := 1
	if c.kw(i, "binary") {
		i++
	}
	t, j, ok := qualifiedName(c.src, c.toks, i)
	if !ok {
		st.Kind, st.AllTables = KindUnknown, true
		return
	}
	if c.is(j, tkLParen) {
		j = c.closeParen(j) + 1
	}
	switch {
	case c.kw(j, "from"):
		st.Kind = KindWrite
		st.Tables = addTable(st.Tables, t)
	case c.kw(j, "to"):
		st.Kind = KindRead
	default:
		st.Kind, st.AllTables = KindUnknown, true
	}
}

// truncate classifies TRUNCATE [TABLE] [ONLY] name [*] [, ...] [CASCADE].
func (c *classifier) truncate(st *Statement) {
	st.Kind = KindWrite
	i := 1
	if c.kw(i, "table") {
		i++
	}
	for {
		if c.kw(i, "only") {
			i++
		}
		j, ok := c.addName(st, i)
		if !ok {
			return
		}
		i = j
		if c.isStar(i) {
			i++
		}
		if !c.is(i, tkComma) {
			break
		}
		i++
	}
	// The tables that CASCADE truncates are not named.
	if c.find(i, "cascade") >= 0 {
		st.AllTables = true
	}
}

// tx classifies the transaction-control statements.
func (c *classifier) tx(st *Statement) {
	st.Kind = KindTx
	chain := func() bool {
		for i := 1; i+1 < len(c.toks); i++ {
			if c.kw(i, "and") && c.kw(i+1, "chain") {
				return true
			}
		}
		return false
	}
	switch {
	case c.kw(0, "begin"):
		st.Tx = TxBegin
	case c.kw(0, "start"):
		if c.kw(1, "transaction") {
			st.Tx = TxBegin
		} else {
			st.Kind, st.AllTables = KindUnknown, true
		}
	case c.kw(0, "commit") || c.kw(0, "end"):
		switch {
		case c.kw(1, "prepared"):
			// The prepared transaction's writes become visible now.
			st.Tx, st.AllTables = TxOther, true
		case chain():
			st.Tx = TxOther
		default:
			st.Tx = TxCommit
		}
	case c.kw(0, "rollback") || c.kw(0, "abort"):
		if c.kw(1, "prepared") {
			st.Tx = TxOther
			return
		}
		for i := 1; i < len(c.toks); i++ {
			if c.kw(i, "to") {
				i++
				if c.kw(i, "savepoint") {
					i++
				}
				c.savepoint(st, TxRollbackTo, i)
				return
			}
		}
		if chain() {
			st.Tx = TxOther
		} else {
			st.Tx = TxRollback
		}
	case c.kw(0, "savepoint"):
		c.savepoint(st, TxSavepoint, 1)
	case c.kw(0, "release"):
		i := 1
		if c.kw(i, "savepoint") {
			i++
		}
		c.savepoint(st, TxRelease, i)
	}
}

// savepoint sets op and the savepoint name at toks[i]; a name it cannot read
// (U&"...", missing) makes the statement TxOther.
func (c *classifier) savepoint(st *Statement, op TxOp, i int) {
	name, ok := identName(c.src, c.tok(i))
	if !ok {
		st.Tx = TxOther
		return
	}
	st.Tx, st.SavepointName = op, name
}

// create classifies CREATE. Tables, views, indexes, triggers, rules and
// policies name their table; everything else may affect any table.
func (c *classifier) create(st *Statement) {
	st.Kind = KindDDL
	i := 1
	if c.kw(i, "or") && c.kw(i+1, "replace") {
		i += 2
	}
	if c.kw(i, "global") || c.kw(i, "local") {
		i++
	}
	if c.kw(i, "temp") || c.kw(i, "temporary") || c.kw(i, "unlogged") {
		i++
	}
	if c.kw(i, "recursive") {
		i++
	}
	switch {
	case c.kw(i, "table"), c.kw(i, "sequence"), c.kw(i, "view"),
		c.kw(i, "materialized") && c.kw(i+1, "view"),
		c.kw(i, "foreign") && c.kw(i+1, "table"):
		isTable := c.kw(i, "table") || c.kw(i, "materialized")
		if c.kw(i, "materialized") || c.kw(i, "foreign") {
			i++
		}
		i++
		if c.kw(i, "if") && c.kw(i+1, "not") && c.kw(i+2, "exists") {
			i += 3
		}
		j, ok := c.addName(st, i)
		if !ok || !isTable {
			return
		}
		// CREATE TABLE ... AS query runs the query, which may write
		// through WITH or EXECUTE anything.
		if as := c.find(j, "as"); as >= 0 {
			if c.kw(as+1, "execute") {
				st.AllTables = true
				return
			}
			var q Statement
			(&classifier{src: c.src, toks: c.toks[as+1:]}).query(&q, 0)
			for _, t := range q.Tables {
				st.Tables = addTable(st.Tables, t)
			}
			st.AllTables = st.AllTables || q.AllTables
		}
	case c.kw(i, "unique") || c.kw(i, "index"):
		if c.kw(i, "unique") {
			i++
		}
		if !c.kw(i, "index") {
			st.AllTables = true
			return
		}
		c.onTable(st, i+1)
	case c.kw(i, "trigger"), c.kw(i, "constraint") && c.kw(i+1, "trigger"),
		c.kw(i, "policy"):
		c.onTable(st, i+1)
	case c.kw(i, "rule"):
		on := c.find(i+1, "on")
		if on < 0 {
			st.AllTables = true
			return
		}
		to := c.find(on, "to")
		if to < 0 {
			st.AllTables = true
			return
		}
		c.addName(st, to+1)
	default:
		st.AllTables = true
	}
}

// onTable reads "... ON [ONLY] name" from toks[i] on.
func (c *classifier) onTable(st *Statement, i int) {
	on := c.find(i, "on")
	if on < 0 {
		st.AllTables = true
		return
	}
	on++
	if c.kw(on, "only") {
		on++
	}
	c.addName(st, on)
}

// alter classifies ALTER TABLE, VIEW, MATERIALIZED VIEW, FOREIGN TABLE,
// INDEX and SEQUENCE, with the new name of RENAME TO and SET SCHEMA and the
// tables of ATTACH/DETACH PARTITION and [NO] INHERIT; any other ALTER may
// affect any table.
func (c *classifier) alter(st *Statement) {
	st.Kind = KindDDL
	i := 1
	switch {
	case c.kw(i, "table"), c.kw(i, "view"), c.kw(i, "index"), c.kw(i, "sequence"):
		i++
	case c.kw(i, "materialized") && c.kw(i+1, "view"), c.kw(i, "foreign") && c.kw(i+1, "table"):
		i += 2
	default:
		st.AllTables = true
		return
	}
	if c.kw(i, "all") { // ALTER TABLE ALL IN TABLESPACE
		st.AllTables = true
		return
	}
	if c.kw(i, "if") && c.kw(i+1, "exists") {
		i += 2
	}
	if c.kw(i, "only") {
		i++
	}
	t, j, ok := c.name(st, i)
	if !ok {
		return
	}
	st.Tables = addTable(st.Tables, t)
	depth := 0
	for ; j < len(c.toks); j++ {
		switch c.toks[j].kind {
		case tkLParen, tkLBracket:
			depth++
			continue
		case tkRParen, tkRBracket:
			depth--
			continue
		case tkIdent:
		default:
			continue
		}
		if depth != 0 {
			continue
		}
		switch {
		case c.kw(j, "rename") && c.kw(j+1, "to"):
			if n, ok := identName(c.src, c.tok(j+2)); ok {
				st.Tables = addTable(st.Tables, Table{Schema: t.Schema, Name: n})
			} else {
				st.AllTables = true
			}
		case c.kw(j, "set") && c.kw(j+1, "schema"):
			if n, ok := identName(c.src, c.tok(j+2)); ok {
				st.Tables = addTable(st.Tables, Table{Schema: n, Name: t.Name})
			} else {
				st.AllTables = true
			}
		case (c.kw(j, "attach") || c.kw(j, "detach")) && c.kw(j+1, "partition"):
			c.addName(st, j+2)
		case c.kw(j, "inherit"):
			// [NO] INHERIT parent; a constraint's NO INHERIT names nothing.
			if p, _, ok := qualifiedName(c.src, c.toks, j+1); ok {
				st.Tables = addTable(st.Tables, p)
			}
		}
	}
}

// tok returns toks[i], or the zero token past the end.
func (c *classifier) tok(i int) token {
	if i < len(c.toks) {
		return c.toks[i]
	}
	return token{}
}

// drop classifies DROP TABLE, VIEW, MATERIALIZED VIEW, FOREIGN TABLE, INDEX
// and SEQUENCE with their names; any other DROP may affect any table.
func (c *classifier) drop(st *Statement) {
	st.Kind = KindDDL
	i := 1
	switch {
	case c.kw(i, "table"), c.kw(i, "view"), c.kw(i, "sequence"):
		i++
	case c.kw(i, "index"):
		i++
		if c.kw(i, "concurrently") {
			i++
		}
	case c.kw(i, "materialized") && c.kw(i+1, "view"), c.kw(i, "foreign") && c.kw(i+1, "table"):
		i += 2
	default:
		st.AllTables = true
		return
	}
	if c.kw(i, "if") && c.kw(i+1, "exists") {
		i += 2
	}
	for {
		j, ok := c.addName(st, i)
		if !ok || !c.is(j, tkComma) {
			return
		}
		i = j + 1
	}
}

// comment classifies COMMENT ON, which changes no data: COMMENT ON TABLE and
// COMMENT ON COLUMN name their table.
func (c *classifier) comment(st *Statement) {
	st.Kind = KindDDL
	switch {
	case c.kw(1, "on") && c.kw(2, "table"):
		c.addName(st, 3)
	case c.kw(1, "on") && c.kw(2, "column"):
		// [[schema.]table.]column: drop the last part.
		var parts [4]string
		n := 0
		for i := 3; i < len(c.toks) && n < len(parts); i += 2 {
			name, ok := identName(c.src, c.toks[i])
			if !ok {
				st.AllTables = true
				return
			}
			parts[n] = name
			n++
			if !c.is(i+1, tkDot) {
				break
			}
		}
		switch n {
		case 2:
			st.Tables = addTable(st.Tables, Table{Name: parts[0]})
		case 3:
			st.Tables = addTable(st.Tables, Table{Schema: parts[0], Name: parts[1]})
		case 4:
			st.Tables = addTable(st.Tables, Table{Schema: parts[1], Name: parts[2]})
		default:
			st.AllTables = true
		}
	}
}

// grant classifies GRANT and REVOKE: privileges ON [TABLE] names change who
// sees those tables; everything else (role membership, ALL TABLES IN SCHEMA,
// schemas, functions) may affect any table.
func (c *classifier) grant(st *Statement) {
	st.Kind = KindDDL
	on := c.find(1, "on")
	if on < 0 {
		st.AllTables = true
		return
	}
	i := on + 1
	if c.kw(i, "table") {
		i++
	} else if t := c.tok(i); t.kind == tkIdent && category(c.src, t) != kwNone {
		// SEQUENCE, DATABASE, SCHEMA, FUNCTION, ALL TABLES IN SCHEMA, ...
		// and tables named like keywords.
		st.AllTables = true
		return
	}
	for {
		j, ok := c.addName(st, i)
		if !ok || !c.is(j, tkComma) {
			return
		}
		i = j + 1
	}
}

// maintenance classifies REINDEX, CLUSTER, VACUUM, ANALYZE and CHECKPOINT,
// which change neither data nor shape: KindDDL with the tables they name and
// AllTables false.
func (c *classifier) maintenance(st *Statement) {
	st.Kind = KindDDL
	i := 1
	if c.kw(0, "reindex") {
		if c.is(i, tkLParen) {
			i = c.closeParen(i) + 1
		}
		if !c.kw(i, "table") {
			return
		}
		i++
		if c.kw(i, "concurrently") {
			i++
		}
		c.addName(st, i)
		return
	}
	if c.kw(0, "checkpoint") {
		return
	}
	for {
		switch {
		case c.is(i, tkLParen):
			i = c.closeParen(i) + 1
			continue
		case c.kw(i, "full"), c.kw(i, "freeze"), c.kw(i, "verbose"), c.kw(i, "analyze"), c.kw(i, "analyse"):
			i++
			continue
		}
		break
	}
	for i < len(c.toks) {
		t, j, ok := qualifiedName(c.src, c.toks, i)
		if !ok {
			return
		}
		st.Tables = addTable(st.Tables, t)
		if c.is(j, tkLParen) { // VACUUM t (a, b)
			j = c.closeParen(j) + 1
		}
		if !c.is(j, tkComma) {
			return
		}
		i = j + 1
	}
}
