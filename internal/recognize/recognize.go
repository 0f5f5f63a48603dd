package recognize

import (
	"slices"
	"strings"
	"sync"
)

// Kind is what a statement may do.
type Kind uint8

const (
	// KindUnknown is a statement whose effect cannot be told: DO, CALL,
	// EXECUTE, LOCK, LOAD, unparseable text, anything not recognized. The
	// caller treats it as possibly writing any table (AllTables is set).
	KindUnknown Kind = iota
	// KindRead cannot modify data: SELECT, VALUES, TABLE, SHOW, EXPLAIN
	// without ANALYZE, DECLARE, FETCH, MOVE, CLOSE, COPY ... TO; without a
	// data-modifying WITH and without SELECT ... INTO. A locking read
	// (FOR UPDATE/SHARE) is KindRead with Locking set, and never a Lookup.
	KindRead
	// KindWrite is INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY ... FROM, a
	// statement with a data-modifying WITH, and EXPLAIN ANALYZE of these.
	KindWrite
	// KindDDL changes the schema or the privileges: CREATE, ALTER, DROP,
	// COMMENT, GRANT, REVOKE, SECURITY LABEL, REFRESH MATERIALIZED VIEW,
	// IMPORT FOREIGN SCHEMA, REASSIGN OWNED, SELECT ... INTO (which creates a
	// table), and the maintenance commands REINDEX, CLUSTER, VACUUM, ANALYZE
	// and CHECKPOINT.
	KindDDL
	// KindTx controls the transaction: BEGIN, START TRANSACTION, COMMIT, END,
	// ROLLBACK, ABORT, SAVEPOINT, RELEASE, ROLLBACK TO, PREPARE TRANSACTION,
	// COMMIT PREPARED, ROLLBACK PREPARED. Statement.Tx says which.
	KindTx
	// KindSession changes session state only: SET, RESET, DISCARD, LISTEN,
	// NOTIFY, UNLISTEN, DEALLOCATE, PREPARE name AS ....
	KindSession
)

// String returns the Kind's name, e.g. "Read".
func (k Kind) String() string {
	switch k {
	case KindUnknown:
		return "Unknown"
	case KindRead:
		return "Read"
	case KindWrite:
		return "Write"
	case KindDDL:
		return "DDL"
	case KindTx:
		return "Tx"
	case KindSession:
		return "Session"
	}
	return "Kind(?)"
}

// TxOp is the transaction-control operation of a KindTx statement.
type TxOp uint8

const (
	// TxNone is the zero value, for statements that are not KindTx.
	TxNone TxOp = iota
	// TxBegin is BEGIN or START TRANSACTION.
	TxBegin
	// TxCommit is COMMIT or END (without AND CHAIN). The server rolls back
	// a failed transaction instead, and says so in the command tag.
	TxCommit
	// TxRollback is ROLLBACK or ABORT (without TO, without AND CHAIN).
	TxRollback
	// TxSavepoint is SAVEPOINT name.
	TxSavepoint
	// TxRelease is RELEASE [SAVEPOINT] name.
	TxRelease
	// TxRollbackTo is ROLLBACK [WORK|TRANSACTION] TO [SAVEPOINT] name.
	TxRollbackTo
	// TxOther is every other transaction-control statement: PREPARE
	// TRANSACTION, COMMIT PREPARED (which also sets AllTables: it makes
	// writes visible that this text does not show), ROLLBACK PREPARED,
	// COMMIT/ROLLBACK AND CHAIN (which end the transaction and start
	// another), and SAVEPOINT, RELEASE or ROLLBACK TO with a savepoint name
	// that cannot be read (U&"...").
	// A caller that tracks transactions treats it as ending the transaction
	// with an outcome it must not rely on.
	TxOther
)

// String returns the TxOp's name, e.g. "Commit".
func (o TxOp) String() string {
	switch o {
	case TxNone:
		return "None"
	case TxBegin:
		return "Begin"
	case TxCommit:
		return "Commit"
	case TxRollback:
		return "Rollback"
	case TxSavepoint:
		return "Savepoint"
	case TxRelease:
		return "Release"
	case TxRollbackTo:
		return "RollbackTo"
	case TxOther:
		return "Other"
	}
	return "TxOp(?)"
}

// Table is a table name as PostgreSQL folds it: unquoted identifiers
// lower-cased (ASCII letters only, as the server does for UTF-8), quoted ones
// kept exactly with "" unescaped to ", both truncated to 63 bytes like the
// server's NAMEDATALEN. Schema is "" when the name was not qualified; a
// three-part name catalog.schema.name keeps schema and name.
type Table struct{ Schema, Name string }

// Statement is the classification of one statement.
type Statement struct {
	// Kind is what the statement may do.
	Kind Kind
	// Tables are the tables written (KindWrite: the targets of INSERT,
	// UPDATE, DELETE, MERGE, TRUNCATE, COPY FROM, including those inside
	// WITH) or created, altered or dropped (KindDDL, when the statement names
	// them). In text order, without duplicates.
	Tables []Table
	// AllTables is true when the statement may write or alter tables it does
	// not name: always for KindUnknown; for DDL that cannot be attributed
	// (DROP SCHEMA, ALTER TYPE, CREATE FUNCTION, ...); for TRUNCATE ...
	// CASCADE; for COMMIT PREPARED; and whenever a write's target could not
	// be read.
	AllTables bool
	// Tx is the operation of a KindTx statement, TxNone otherwise.
	Tx TxOp
	// SavepointName is the folded savepoint name of TxSavepoint, TxRelease
	// and TxRollbackTo.
	SavepointName string
	// Locking is true when FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE or FOR
	// KEY SHARE appears.
	Locking bool
	// Lookup is non-nil only for a single-statement SELECT that may be a
	// primary-key lookup; see [Lookup].
	Lookup *Lookup
	// Write describes a simple single-table INSERT, UPDATE or DELETE (one
	// that does not start with WITH); nil otherwise.
	Write *Write
}

// Write describes a single-table INSERT, UPDATE or DELETE.
type Write struct {
	// Op is "INSERT", "UPDATE" or "DELETE".
	Op string
	// Table is the target table.
	Table Table
	// Alias is the target's folded alias, "" if none.
	Alias string
	// Returning is true when the statement already has a RETURNING clause.
	Returning bool
	// OnConflict is true for INSERT ... ON CONFLICT.
	OnConflict bool
	// Preds are the predicates of an UPDATE or DELETE whose WHERE clause is
	// only ANDed equalities (the grammar of [Lookup].Preds), without FROM or
	// USING; nil otherwise.
	Preds []Pred
	// SetCols are the folded columns an UPDATE assigns, in text order
	// (SET (a, b) = ... gives both; SET a.f = ... and SET a[1] = ... give a).
	SetCols []string
}

// Classification is the result of [Classify].
type Classification struct {
	// Statements has one entry per statement of the text; empty statements
	// (";;") are skipped.
	Statements []Statement
	// Calls are the names (folded, without schema) that appear where a
	// function call may: a name followed by "(", other than a type's
	// modifiers after "::". It over-approximates: table names in INSERT
	// INTO t (...) and keywords are there too; a caller looks them up in
	// the catalog.
	Calls []string
	// Operators are the operators the text uses (a user-defined operator
	// runs its function), spelled or implied by SQL's own syntax (IN and
	// NOT IN, IS [NOT] DISTINCT FROM, NULLIF, a simple CASE, BETWEEN,
	// [NOT] LIKE, ILIKE, SIMILAR TO, JOIN USING, NATURAL JOIN: the server
	// looks each up by name along the search_path); the caller looks them
	// up in the catalog.
	Operators []string
	// Attrs are the names after a "." not followed by "(": t.f is a column
	// of t or, when t has none of that name, a call f(t) (attribute
	// notation). The caller looks up functions of one composite argument.
	Attrs []string
	// Backslash is true when a plain string constant ('...') holds a
	// backslash: with standard_conforming_strings off the server reads it
	// as an escape, and the statements' boundaries may not be these.
	Backslash bool
}

// Lookup describes a query of the form
//
//	SELECT <columns> FROM [schema.]table [[AS] alias] WHERE <preds>
//	  [ORDER BY <columns>] [LIMIT n] [OFFSET n]
//
// where the columns are * or plain column references and the predicates are
// ANDed equalities, IN lists, = ANY($n) and IS NULL on plain columns against
// parameters, numbers and plain string constants.
type Lookup struct {
	// Table is the table read.
	Table Table
	// Alias is the folded alias, "" if none.
	Alias string
	// Star is true for SELECT * and SELECT t.* (and only those).
	Star bool
	// Columns are the output columns when !Star.
	Columns []OutCol
	// Preds are the ANDed predicates of the WHERE clause, in text order.
	Preds []Pred
	// OrderBy are the ORDER BY columns, resolved to the table's columns (an
	// unqualified ORDER BY name refers to an output column first, as in
	// PostgreSQL); nil when there is no ORDER BY.
	OrderBy []OrderCol
	// Limit is the LIMIT or FETCH FIRST count (FETCH FIRST ROW ONLY gives the
	// literal 1); nil when absent. A literal is a non-negative integer.
	Limit *Value
	// Offset is the OFFSET count; nil when absent. A literal is a
	// non-negative integer.
	Offset *Value
}

// OutCol is one output column of a Lookup.
type OutCol struct {
	// Column is the folded table column.
	Column string
	// As is the folded output name: the alias, or the column name when there
	// is none (a cast keeps the column's name).
	As string
	// Cast is the type the column is cast to with "::" in the select list
	// (balance::text), as Value.Cast; empty without one.
	Cast string
}

// OrderCol is one ORDER BY column of a Lookup.
type OrderCol struct {
	// Column is the folded table column.
	Column string
	// Desc is true for DESC.
	Desc bool
}

// PredKind is the form of a predicate.
type PredKind uint8

const (
	// PredEq is col = value (or value = col).
	PredEq PredKind = iota
	// PredIn is col IN (value, ...).
	PredIn
	// PredAny is col = ANY($n).
	PredAny
	// PredIsNull is col IS NULL.
	PredIsNull
)

// String returns the PredKind's name, e.g. "Eq".
func (k PredKind) String() string {
	switch k {
	case PredEq:
		return "Eq"
	case PredIn:
		return "In"
	case PredAny:
		return "Any"
	case PredIsNull:
		return "IsNull"
	}
	return "PredKind(?)"
}

// Pred is one predicate of a WHERE clause.
type Pred struct {
	// Column is the folded column, its qualifier (which must be the alias,
	// or the table name or schema.table when there is no alias) stripped.
	Column string
	// Kind is the predicate's form.
	Kind PredKind
	// Value is the compared value of PredEq, and the array parameter of
	// PredAny (Value.Param).
	Value Value
	// List are the values of PredIn, at least one.
	List []Value
}

// Value is a parameter or a constant.
type Value struct {
	// Param is the 1-based parameter number of $n, 0 for a literal.
	Param int
	// Literal is the constant's text: a string constant's unescaped content,
	// or a decimal number's text including a leading '-' (digits, '.', an
	// exponent; never hexadecimal, octal, binary or '_' separators; leading
	// zeros do not mean octal).
	Literal string
	// String is true for a string constant ('...' or E'...').
	String bool
	// Cast is the type the value is cast to with "::" (folded, without a
	// pg_catalog qualification, "[]" appended for an array), "" without a
	// cast. Only casts without a type modifier are read.
	Cast string
}

// Classify classifies every statement of sql. It never fails: text it cannot
// read is one KindUnknown statement with AllTables set. Names and literals in
// the result are usually substrings of sql and keep it in memory.
func Classify(sql string) Classification {
	buf := bufPool.Get().(*buffers)
	defer buf.release()
	toks, ok := lex(sql, buf.toks[:0])
	buf.toks = toks
	if !ok {
		return unknownText()
	}
	spans, ok := split(sql, toks, buf.spans[:0])
	buf.spans = spans
	if !ok {
		return unknownText()
	}
	if len(spans) == 0 {
		return Classification{}
	}
	stmts := make([]Statement, len(spans))
	for i, sp := range spans {
		classifyStatement(&stmts[i], sql, toks[sp.from:sp.to], len(spans) == 1)
	}
	var calls, ops, attrs []string
	addOp := func(op string) {
		if !slices.Contains(ops, op) {
			ops = append(ops, op)
		}
	}
	backslash := false
	for i, t := range toks {
		if t.kind == tkOp {
			addOp(sql[t.pos:t.end])
			continue
		}
		if t.kind == tkDot && i+1 < len(toks) && isName(toks[i+1]) && (i+2 >= len(toks) || toks[i+2].kind != tkLParen) {
			name, ok := identName(sql, toks[i+1])
			if !ok {
				name = "?"
			}
			if !slices.Contains(attrs, name) {
				attrs = append(attrs, name)
			}
		}
		if t.kind == tkIdent {
			if name, ok := identName(sql, t); ok {
				for _, op := range impliedOps(sql, toks, i, name) {
					addOp(op)
				}
			}
		}
		if (t.kind == tkString || t.kind == tkOtherString) && t.flags&fBackslash != 0 {
			// N'...' (and U&'...') are plain strings to the server too.
			backslash = true
		}
		if (t.kind != tkIdent && t.kind != tkQIdent && t.kind != tkUIdent) || i+1 >= len(toks) || toks[i+1].kind != tkLParen {
			continue
		}
		if i > 0 && toks[i-1].kind == tkCast {
			continue // ::numeric(10, 2)
		}
		name, ok := identName(sql, t)
		if !ok {
			name = "?" // a name it cannot read: the caller widens
		}
		if t.kind == tkIdent && notCall[name] {
			continue // VALUES (, IN (, ANY (, ...: SQL, not a function
		}
		if j := qualifiedStart(toks, i); j > 0 && toks[j-1].kind == tkIdent {
			if prev, _ := identName(sql, toks[j-1]); relationBefore[prev] {
				continue // INSERT INTO t (...), CAST(x AS numeric(10, 2))
			}
		}
		if !slices.Contains(calls, name) {
			calls = append(calls, name)
		}
	}
	if strings.IndexByte(sql, '\v') >= 0 {
		// PostgreSQL 15 does not take a vertical tab as white space (16
		// does): such a text may be a syntax error there, so it is never
		// answered from the cache.
		for i := range stmts {
			stmts[i].Lookup = nil
		}
	}
	return Classification{Statements: stmts, Calls: calls, Operators: ops, Attrs: attrs, Backslash: backslash}
}

func isName(t token) bool { return t.kind == tkIdent || t.kind == tkQIdent || t.kind == tkUIdent }

// impliedOps are the operators the keyword name (the i-th token, unquoted)
// makes the server look up by name: more than it may (IN also lists <>
// for NOT IN, LIKE its negation), never fewer.
func impliedOps(sql string, toks []token, i int, name string) []string {
	next := func() (string, tokKind) {
		if i+1 >= len(toks) {
			return "", 0
		}
		n, _ := identName(sql, toks[i+1])
		return n, toks[i+1].kind
	}
	switch name {
	case "in":
		if _, k := next(); k == tkLParen {
			return []string{"=", "<>"}
		}
	case "distinct":
		// IS [NOT] DISTINCT FROM (SELECT DISTINCT sorts or hashes by the
		// type's default operator class, which is not looked up by name).
		if j := i - 1; j >= 0 && toks[j].kind == tkIdent {
			if p, _ := identName(sql, toks[j]); p == "is" || p == "not" {
				return []string{"="}
			}
		}
	case "nullif", "natural":
		return []string{"="}
	case "using":
		if _, k := next(); k == tkLParen {
			return []string{"="} // JOIN ... USING (a, b)
		}
	case "case":
		if n, _ := next(); n != "when" {
			return []string{"="} // CASE x WHEN v: x = v
		}
	case "between":
		return []string{"<=", ">=", "<", ">"}
	case "like":
		return []string{"~~", "!~~"}
	case "ilike":
		return []string{"~~*", "!~~*"}
	case "similar":
		return []string{"~", "!~"}
	}
	return nil
}

// buffers are the scratch slices of one Classify call, reused through
// bufPool.
type buffers struct {
	toks  []token
	spans []span
}

// maxPooledTokens bounds the token buffers kept for reuse, so that one huge
// text does not pin its buffer.
const maxPooledTokens = 4096

var bufPool = sync.Pool{New: func() any {
	return &buffers{toks: make([]token, 0, 128), spans: make([]span, 0, 8)}
}}

func (b *buffers) release() {
	if cap(b.toks) > maxPooledTokens || cap(b.spans) > maxPooledTokens {
		return
	}
	bufPool.Put(b)
}

func unknownText() Classification {
	return Classification{Statements: []Statement{{Kind: KindUnknown, AllTables: true}}}
}

// notCall are keywords that may be followed by "(" without being a call.
var notCall = map[string]bool{}

// relationBefore are keywords after which a name followed by "(" is a
// relation's column list or a type, not a call.
var relationBefore = map[string]bool{}

func init() {
	// Only PostgreSQL's reserved keywords and the column-name keywords
	// (which cannot name a function unquoted) are never calls: any other
	// name followed by "(" is asked of the catalog, which says whether a
	// user function of that name exists (an unreserved keyword such as key,
	// rows or range can name one).
	for _, k := range strings.Fields(`all analyse analyze and any array as asc asymmetric both case cast check
		collate column constraint create current_catalog current_date current_role current_time
		current_timestamp current_user default deferrable desc distinct do else end except false fetch for
		foreign from grant group having in initially intersect into lateral leading limit localtime
		localtimestamp not null offset on only or order placing primary references returning select
		session_user some symmetric table then to trailing true union unique user using variadic when where
		window with
		between bigint bit boolean char character coalesce dec decimal exists extract float greatest grouping
		inout int integer interval least national nchar none normalize nullif numeric out overlay position
		precision real row setof smallint substring time timestamp treat trim values varchar xmlattributes
		xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize xmltable`) {
		notCall[k] = true
	}
	// Not after FROM or JOIN: a name followed by "(" there is a function
	// in FROM.
	for _, k := range strings.Fields(`into table references only as index view exists type
		trigger sequence schema domain function procedure aggregate operator cast policy rule publication`) {
		relationBefore[k] = true
	}
}

// qualifiedStart returns the index of the first token of the dotted name
// that ends at toks[i] (schema.table ends at table).
func qualifiedStart(toks []token, i int) int {
	for i >= 2 && toks[i-1].kind == tkDot && (toks[i-2].kind == tkIdent || toks[i-2].kind == tkQIdent) {
		i -= 2
	}
	return i
}
