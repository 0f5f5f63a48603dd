package recognizetest

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/wtcache/wtcache/internal/recognize"
)

// This file reads PostgreSQL's own parse tree (pg_query: the server's
// grammar and scanner, PostgreSQL 17) and derives, independently of the
// recognizer, the Lookup that a statement is — or why it is none. It is the
// reference the differential test holds recognize.Classify to.

// deriveLookup returns the Lookup that the parse tree describes, or nil and
// the reason why the statement is not exactly a key-lookup shape.
//
// The rules are PostgreSQL's, re-read from its source (parse_relation.c,
// parse_target.c, parse_clause.c), not the recognizer's:
//   - one SelectStmt without WITH, DISTINCT, INTO, GROUP BY, HAVING, WINDOW,
//     set operation, locking clause or VALUES;
//   - FROM is one RangeVar: no ONLY (inh), no catalog, no TABLESAMPLE (which
//     wraps the RangeVar), no column aliases;
//   - the target list is one * or t.*, or ColumnRefs, each output named by
//     its alias or its last field;
//   - WHERE is ANDed col = const|$n (either side), col IN (const|$n, ...),
//     col = ANY($n), col IS NULL, with the operator spelled "=" unqualified;
//   - ORDER BY plain ColumnRefs with default NULLS and no USING, an
//     unqualified name resolving to an output column first
//     (findTargetlistEntrySQL92), ambiguity being an error;
//   - LIMIT/OFFSET/FETCH FIRST a non-negative integer constant or $n; no
//     WITH TIES.
//
// A column reference must name the single table: one field; two fields whose
// first is the alias, or the table name when there is no alias; three fields
// schema.table.column only when the FROM item is schema.table without alias
// (a schema-qualified reference matches the relation's OID, which only the
// server can tell for an unqualified FROM, so such a reference is undecidable
// here and taken as no Lookup).
func deriveLookup(res *pg.ParseResult) (*recognize.Lookup, string) {
	if len(res.GetStmts()) != 1 {
		return nil, fmt.Sprintf("%d statements", len(res.GetStmts()))
	}
	sel := res.Stmts[0].GetStmt().GetSelectStmt()
	if sel == nil {
		return nil, "not a SELECT"
	}
	switch {
	case sel.WithClause != nil:
		return nil, "WITH"
	case len(sel.DistinctClause) > 0:
		return nil, "DISTINCT"
	case sel.IntoClause != nil:
		return nil, "INTO"
	case len(sel.GroupClause) > 0 || sel.GroupDistinct:
		return nil, "GROUP BY"
	case sel.HavingClause != nil:
		return nil, "HAVING"
	case len(sel.WindowClause) > 0:
		return nil, "WINDOW"
	case sel.Op != pg.SetOperation_SETOP_NONE || sel.Larg != nil || sel.Rarg != nil:
		return nil, "set operation"
	case len(sel.LockingClause) > 0:
		return nil, "locking clause"
	case len(sel.ValuesLists) > 0:
		return nil, "VALUES"
	case sel.LimitOption == pg.LimitOption_LIMIT_OPTION_WITH_TIES:
		return nil, "WITH TIES"
	}
	if len(sel.FromClause) != 1 {
		return nil, fmt.Sprintf("%d FROM items", len(sel.FromClause))
	}
	rv := sel.FromClause[0].GetRangeVar()
	if rv == nil {
		return nil, "FROM item is not a plain table"
	}
	if !rv.Inh {
		return nil, "ONLY"
	}
	if rv.Catalogname != "" {
		return nil, "catalog-qualified table"
	}
	sc := scope{schema: rv.Schemaname, table: rv.Relname}
	if rv.Alias != nil {
		if len(rv.Alias.Colnames) > 0 {
			return nil, "column aliases"
		}
		sc.alias = rv.Alias.Aliasname
	}
	l := &recognize.Lookup{
		Table: recognize.Table{Schema: rv.Schemaname, Name: rv.Relname},
		Alias: sc.alias,
	}

	// Target list.
	if len(sel.TargetList) == 0 {
		return nil, "empty target list"
	}
	for _, n := range sel.TargetList {
		rt := n.GetResTarget()
		if rt == nil || len(rt.Indirection) > 0 {
			return nil, "odd target"
		}
		val, cast := rt.GetVal(), ""
		if tc := val.GetTypeCast(); tc != nil {
			name, why := castName(tc.TypeName, false)
			if why != "" {
				return nil, "output cast: " + why
			}
			val, cast = tc.Arg, name
		}
		cr := val.GetColumnRef()
		if cr == nil || len(cr.Fields) == 0 {
			return nil, "output is not a column"
		}
		last := cr.Fields[len(cr.Fields)-1]
		if last.GetAStar() != nil {
			if len(sel.TargetList) != 1 || rt.Name != "" {
				return nil, "* with other outputs"
			}
			quals, ok := stringFields(cr.Fields[:len(cr.Fields)-1])
			if !ok || !sc.qualifies(quals) {
				return nil, "* qualifier does not name the table"
			}
			if cast != "" {
				return nil, "cast of *"
			}
			l.Star = true
			continue
		}
		col, _, ok := sc.column(cr)
		if !ok {
			return nil, "output column reference does not name the table"
		}
		as := rt.Name
		if as == "" {
			as = col
		}
		l.Columns = append(l.Columns, recognize.OutCol{Column: col, As: as, Cast: cast})
	}

	// WHERE.
	if sel.WhereClause == nil {
		return nil, "no WHERE"
	}
	var conj []*pg.Node
	flattenAnd(sel.WhereClause, &conj)
	for _, n := range conj {
		p, why := sc.pred(n)
		if why != "" {
			return nil, why
		}
		l.Preds = append(l.Preds, p)
	}

	// ORDER BY.
	for _, n := range sel.SortClause {
		sb := n.GetSortBy()
		if sb == nil || len(sb.UseOp) > 0 || sb.SortbyDir == pg.SortByDir_SORTBY_USING {
			return nil, "ORDER BY USING"
		}
		if sb.SortbyNulls != pg.SortByNulls_SORTBY_NULLS_DEFAULT {
			return nil, "ORDER BY NULLS"
		}
		cr := sb.GetNode().GetColumnRef()
		if cr == nil {
			return nil, "ORDER BY expression"
		}
		col, qualified, ok := sc.column(cr)
		if !ok {
			return nil, "ORDER BY column reference does not name the table"
		}
		if !qualified && !l.Star {
			// findTargetlistEntrySQL92: an output column of that name first.
			found, ambiguous := "", false
			for _, c := range l.Columns {
				if c.As == col {
					if found != "" && found != c.Column {
						ambiguous = true
					}
					found = c.Column
				}
			}
			if ambiguous {
				return nil, "ambiguous ORDER BY name"
			}
			if found != "" {
				col = found
			}
		}
		l.OrderBy = append(l.OrderBy, recognize.OrderCol{
			Column: col,
			Desc:   sb.SortbyDir == pg.SortByDir_SORTBY_DESC,
		})
	}

	// LIMIT, OFFSET.
	if sel.LimitCount != nil {
		v, why := countValue(sel.LimitCount)
		if why != "" {
			return nil, "LIMIT: " + why
		}
		l.Limit = &v
	}
	if sel.LimitOffset != nil {
		v, why := countValue(sel.LimitOffset)
		if why != "" {
			return nil, "OFFSET: " + why
		}
		l.Offset = &v
	}
	return l, ""
}

// scope is the single FROM item.
type scope struct{ schema, table, alias string }

// qualifies reports whether quals (the fields before the column or the *)
// certainly name the FROM item.
func (s *scope) qualifies(quals []string) bool {
	switch len(quals) {
	case 0:
		return true
	case 1:
		if s.alias != "" {
			return quals[0] == s.alias
		}
		return quals[0] == s.table
	case 2:
		return s.alias == "" && s.schema != "" && quals[0] == s.schema && quals[1] == s.table
	}
	return false
}

// column returns the table column that cr names, and whether it was
// qualified.
func (s *scope) column(cr *pg.ColumnRef) (string, bool, bool) {
	f, ok := stringFields(cr.Fields)
	if !ok || len(f) == 0 || !s.qualifies(f[:len(f)-1]) {
		return "", false, false
	}
	return f[len(f)-1], len(f) > 1, true
}

func (s *scope) columnOf(n *pg.Node) (string, bool) {
	cr := n.GetColumnRef()
	if cr == nil {
		return "", false
	}
	col, _, ok := s.column(cr)
	return col, ok
}

func stringFields(fields []*pg.Node) ([]string, bool) {
	out := make([]string, len(fields))
	for i, f := range fields {
		s := f.GetString_()
		if s == nil {
			return nil, false
		}
		out[i] = s.Sval
	}
	return out, true
}

// flattenAnd appends the operands of nested ANDs, in text order.
func flattenAnd(n *pg.Node, out *[]*pg.Node) {
	if b := n.GetBoolExpr(); b != nil && b.Boolop == pg.BoolExprType_AND_EXPR {
		for _, a := range b.Args {
			flattenAnd(a, out)
		}
		return
	}
	*out = append(*out, n)
}

// isEqOp reports whether an operator name is the bare "=".
func isEqOp(name []*pg.Node) bool {
	return len(name) == 1 && name[0].GetString_().GetSval() == "="
}

func (s *scope) pred(n *pg.Node) (recognize.Pred, string) {
	if nt := n.GetNullTest(); nt != nil {
		if nt.Nulltesttype != pg.NullTestType_IS_NULL {
			return recognize.Pred{}, "IS NOT NULL"
		}
		col, ok := s.columnOf(nt.Arg)
		if !ok {
			return recognize.Pred{}, "IS NULL of a non-column"
		}
		return recognize.Pred{Column: col, Kind: recognize.PredIsNull}, ""
	}
	e := n.GetAExpr()
	if e == nil {
		return recognize.Pred{}, "predicate is not an operator expression"
	}
	if !isEqOp(e.Name) {
		return recognize.Pred{}, "operator is not ="
	}
	switch e.Kind {
	case pg.A_Expr_Kind_AEXPR_OP:
		if col, ok := s.columnOf(e.Lexpr); ok {
			v, why := value(e.Rexpr)
			if why == "" {
				return recognize.Pred{Column: col, Kind: recognize.PredEq, Value: v}, ""
			}
		}
		if col, ok := s.columnOf(e.Rexpr); ok {
			v, why := value(e.Lexpr)
			if why == "" {
				return recognize.Pred{Column: col, Kind: recognize.PredEq, Value: v}, ""
			}
		}
		return recognize.Pred{}, "= is not between a column and a constant or parameter"
	case pg.A_Expr_Kind_AEXPR_OP_ANY:
		col, ok := s.columnOf(e.Lexpr)
		arg, cast := e.Rexpr, ""
		if tc := arg.GetTypeCast(); tc != nil {
			name, why := castName(tc.TypeName, true)
			if why != "" {
				return recognize.Pred{}, "= ANY cast: " + why
			}
			arg, cast = tc.Arg, name
		}
		p := arg.GetParamRef()
		if !ok || p == nil || !paramOK(p) {
			return recognize.Pred{}, "= ANY of something else than col and $n"
		}
		return recognize.Pred{Column: col, Kind: recognize.PredAny, Value: recognize.Value{Param: int(p.Number), Cast: cast}}, ""
	case pg.A_Expr_Kind_AEXPR_IN:
		col, ok := s.columnOf(e.Lexpr)
		list := e.Rexpr.GetList()
		if !ok || list == nil || len(list.Items) == 0 {
			return recognize.Pred{}, "IN of something else than a column and a list"
		}
		vals := make([]recognize.Value, len(list.Items))
		for i, it := range list.Items {
			v, why := value(it)
			if why != "" {
				return recognize.Pred{}, "IN list: " + why
			}
			vals[i] = v
		}
		return recognize.Pred{Column: col, Kind: recognize.PredIn, List: vals}, ""
	}
	return recognize.Pred{}, "other operator expression"
}

func paramOK(p *pg.ParamRef) bool { return p.Number >= 1 && p.Number <= 65535 }

// value reads $n, an integer or decimal number, or a string constant,
// optionally cast to a type without modifiers.
func value(n *pg.Node) (recognize.Value, string) {
	if tc := n.GetTypeCast(); tc != nil {
		name, why := castName(tc.TypeName, false)
		if why != "" {
			return recognize.Value{}, "cast: " + why
		}
		if tc.Arg.GetTypeCast() != nil {
			return recognize.Value{}, "cast of a cast"
		}
		v, why := value(tc.Arg)
		if why == "" && !v.String && strings.HasPrefix(v.Literal, "-") {
			// The grammar folds "- 5" into a negative constant only
			// without a cast: -5::int is -(5::int), no constant.
			return recognize.Value{}, "cast of a negative number"
		}
		v.Cast = name
		return v, why
	}
	if p := n.GetParamRef(); p != nil {
		if !paramOK(p) {
			return recognize.Value{}, "parameter number out of range"
		}
		return recognize.Value{Param: int(p.Number)}, ""
	}
	c := n.GetAConst()
	if c == nil {
		return recognize.Value{}, "not a constant or parameter"
	}
	if c.Isnull {
		return recognize.Value{}, "NULL"
	}
	switch v := c.Val.(type) {
	case *pg.A_Const_Ival:
		return recognize.Value{Literal: strconv.Itoa(int(v.Ival.GetIval()))}, ""
	case *pg.A_Const_Fval:
		return recognize.Value{Literal: v.Fval.GetFval()}, ""
	case *pg.A_Const_Sval:
		return recognize.Value{Literal: v.Sval.GetSval(), String: true}, ""
	}
	return recognize.Value{}, "boolean or bit-string constant"
}

// countValue reads a LIMIT or OFFSET count: $n or a non-negative integer.
func countValue(n *pg.Node) (recognize.Value, string) {
	v, why := value(n)
	if why != "" {
		return v, why
	}
	if v.String {
		return v, "string count"
	}
	if v.Param == 0 {
		r, ok := new(big.Rat).SetString(v.Literal)
		if !ok || !r.IsInt() || r.Sign() < 0 || strings.ContainsAny(v.Literal, ".eE") {
			return v, "not a non-negative integer"
		}
	}
	return v, ""
}

// lookupsEqual compares the recognizer's Lookup got with the Lookup want
// derived from the parse tree and returns the first difference, or "".
// A numeric literal must have the same value and, where the parser kept the
// text (a Float node: a fraction, an exponent or an integer beyond int4),
// the same text; where the parser made it an Integer, the recognizer's text
// must be an integer too (007 and 7 agree).
func lookupsEqual(got, want *recognize.Lookup) string {
	switch {
	case got.Table != want.Table:
		return fmt.Sprintf("table %+v, want %+v", got.Table, want.Table)
	case got.Alias != want.Alias:
		return fmt.Sprintf("alias %q, want %q", got.Alias, want.Alias)
	case got.Star != want.Star:
		return fmt.Sprintf("star %v, want %v", got.Star, want.Star)
	case len(got.Columns) != len(want.Columns):
		return fmt.Sprintf("columns %v, want %v", got.Columns, want.Columns)
	case len(got.Preds) != len(want.Preds):
		return fmt.Sprintf("%d predicates, want %d", len(got.Preds), len(want.Preds))
	case len(got.OrderBy) != len(want.OrderBy):
		return fmt.Sprintf("ORDER BY %v, want %v", got.OrderBy, want.OrderBy)
	}
	for i := range got.Columns {
		g := got.Columns[i]
		g.Cast = canonicalType(g.Cast)
		if g != want.Columns[i] {
			return fmt.Sprintf("column %d %+v, want %+v", i, got.Columns[i], want.Columns[i])
		}
	}
	for i := range got.OrderBy {
		if got.OrderBy[i] != want.OrderBy[i] {
			return fmt.Sprintf("ORDER BY %d %+v, want %+v", i, got.OrderBy[i], want.OrderBy[i])
		}
	}
	for i := range got.Preds {
		g, w := got.Preds[i], want.Preds[i]
		if g.Column != w.Column || g.Kind != w.Kind || len(g.List) != len(w.List) {
			return fmt.Sprintf("predicate %d: %q %v (%d values), want %q %v (%d values)", i, g.Column, g.Kind, len(g.List), w.Column, w.Kind, len(w.List))
		}
		switch w.Kind {
		case recognize.PredEq, recognize.PredAny:
			if d := valuesEqual(g.Value, w.Value); d != "" {
				return fmt.Sprintf("predicate %d (%q): %s", i, w.Column, d)
			}
		default:
			if g.Value != (recognize.Value{}) {
				return fmt.Sprintf("predicate %d (%q %v) has a value %+v", i, w.Column, w.Kind, g.Value)
			}
		}
		for k := range w.List {
			if d := valuesEqual(g.List[k], w.List[k]); d != "" {
				return fmt.Sprintf("predicate %d (%q) item %d: %s", i, w.Column, k, d)
			}
		}
	}
	for _, c := range []struct {
		name      string
		got, want *recognize.Value
	}{{"LIMIT", got.Limit, want.Limit}, {"OFFSET", got.Offset, want.Offset}} {
		switch {
		case (c.got == nil) != (c.want == nil):
			return fmt.Sprintf("%s %s, want %s", c.name, dumpValue(c.got), dumpValue(c.want))
		case c.got != nil:
			if d := valuesEqual(*c.got, *c.want); d != "" {
				return c.name + ": " + d
			}
		}
	}
	return ""
}

func isIntText(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func valuesEqual(g, w recognize.Value) string {
	bad := fmt.Sprintf("%s, want %s", dumpValue(&g), dumpValue(&w))
	if g.Param != w.Param || g.String != w.String || canonicalType(g.Cast) != canonicalType(w.Cast) {
		return bad
	}
	if w.Param != 0 || w.String {
		if g.Literal != w.Literal {
			return bad
		}
		return ""
	}
	gr, ok1 := new(big.Rat).SetString(g.Literal)
	wr, ok2 := new(big.Rat).SetString(w.Literal)
	if !ok1 || !ok2 || gr.Cmp(wr) != 0 {
		return bad
	}
	if isIntText(w.Literal) {
		if !isIntText(g.Literal) {
			return bad
		}
	} else if g.Literal != w.Literal {
		return bad
	}
	return ""
}

// writeIn returns a description of the first data-modifying statement that
// running stmt executes, or "". EXPLAIN without ANALYZE and PREPARE do not
// run their statement; everything else (WITH, EXPLAIN ANALYZE, COPY (...) TO,
// CREATE TABLE AS, ...) is searched throughout.
func writeIn(m protoreflect.Message) string {
	switch v := m.Interface().(type) {
	case *pg.InsertStmt:
		return "InsertStmt"
	case *pg.UpdateStmt:
		return "UpdateStmt"
	case *pg.DeleteStmt:
		return "DeleteStmt"
	case *pg.MergeStmt:
		return "MergeStmt"
	case *pg.TruncateStmt:
		return "TruncateStmt"
	case *pg.CopyStmt:
		if v.IsFrom {
			return "CopyStmt FROM"
		}
	case *pg.PrepareStmt:
		return ""
	case *pg.ExplainStmt:
		if !explainAnalyze(v) {
			return ""
		}
	}
	found := ""
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && found == ""; i++ {
				found = writeIn(l.Get(i).Message())
			}
		} else {
			found = writeIn(v.Message())
		}
		return found == ""
	})
	return found
}

// explainAnalyze reports whether EXPLAIN runs its statement: an ANALYZE
// option that defGetBoolean reads as true.
func explainAnalyze(e *pg.ExplainStmt) bool {
	on := false
	for _, o := range e.Options {
		d := o.GetDefElem()
		if d == nil || d.Defname != "analyze" {
			continue
		}
		switch {
		case d.Arg == nil:
			on = true
		case d.Arg.GetInteger() != nil:
			on = d.Arg.GetInteger().Ival == 1
		case d.Arg.GetBoolean() != nil:
			on = d.Arg.GetBoolean().Boolval
		case d.Arg.GetString_() != nil:
			s := strings.ToLower(d.Arg.GetString_().Sval)
			on = s == "true" || s == "on"
		default:
			on = false
		}
	}
	return on
}

// castName reads a cast's type name as the recognizer reports it: the type's
// name in pg_catalog (int8 for bigint, float8 for double precision), with
// "[]" for a one-dimensional array when array, and no type modifier.
func castName(tn *pg.TypeName, array bool) (string, string) {
	if tn == nil || len(tn.Typmods) > 0 || tn.Setof || tn.PctType {
		return "", "type modifier or odd type"
	}
	names, ok := stringFields(tn.Names)
	if !ok || len(names) == 0 || len(names) > 2 || len(names) == 2 && names[0] != "pg_catalog" {
		return "", "type outside pg_catalog"
	}
	name := names[len(names)-1]
	switch {
	case array && len(tn.ArrayBounds) == 1:
		return name + "[]", ""
	case len(tn.ArrayBounds) > 0 || array:
		return "", "array dimensions"
	}
	return name, ""
}

// canonicalType maps the recognizer's spelling of a type (the grammar's
// keywords included) to its pg_catalog name, as castName reads it.
func canonicalType(s string) string {
	arr := strings.HasSuffix(s, "[]")
	s = strings.TrimSuffix(s, "[]")
	if c, ok := map[string]string{
		"bigint": "int8", "int": "int4", "integer": "int4", "smallint": "int2", "real": "float4",
		"double precision": "float8", "float": "float8", "boolean": "bool", "character varying": "varchar",
		"decimal": "numeric", "dec": "numeric",
	}[s]; ok {
		s = c
	}
	if arr {
		s += "[]"
	}
	return s
}
