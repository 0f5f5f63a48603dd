package recognize

import (
	"reflect"
	"testing"
)

// FuzzClassify checks the properties every classification must have, on the
// committed corpus in testdata/fuzz/FuzzClassify and the test tables:
//   - Classify never panics and is deterministic;
//   - blanks around the text change nothing;
//   - a Lookup comes only from a single, non-locking KindRead statement, with
//     non-empty names and parameters in 1..65535;
//   - a Lookup survives a round trip through its canonical SQL;
//   - KindUnknown always has AllTables; Tx is set exactly for KindTx; a
//     Write is a KindWrite and its table is among the statement's tables.
func FuzzClassify(f *testing.F) {
	for _, q := range benchQueries {
		f.Add(q.sql)
	}
	for _, q := range rejected {
		f.Add(q.sql)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		c := Classify(sql)
		if again := Classify(sql); !reflect.DeepEqual(c, again) {
			t.Fatalf("Classify(%q) is not deterministic:\n %+v\n %+v", sql, c, again)
		}
		if padded := Classify(" \n" + sql + " "); !reflect.DeepEqual(briefs(c), briefs(padded)) ||
			!sameLookups(c, padded) {
			t.Fatalf("blanks around %q changed the classification:\n %v\n %v", sql, briefs(c), briefs(padded))
		}
		for _, st := range c.Statements {
			checkStatement(t, sql, st, len(c.Statements))
		}
	})
}

func sameLookups(a, b Classification) bool {
	for i := range a.Statements {
		if !reflect.DeepEqual(a.Statements[i].Lookup, b.Statements[i].Lookup) ||
			!reflect.DeepEqual(a.Statements[i].Write, b.Statements[i].Write) {
			return false
		}
	}
	return true
}

func checkStatement(t *testing.T, sql string, st Statement, n int) {
	t.Helper()
	if st.Kind == KindUnknown && !st.AllTables {
		t.Fatalf("Classify(%q): KindUnknown without AllTables", sql)
	}
	if (st.Kind == KindTx) != (st.Tx != TxNone) {
		t.Fatalf("Classify(%q): Kind %v with Tx %v", sql, st.Kind, st.Tx)
	}
	for _, tb := range st.Tables {
		if tb.Name == "" {
			t.Fatalf("Classify(%q): empty table name in %v", sql, st.Tables)
		}
	}
	if w := st.Write; w != nil {
		if st.Kind != KindWrite || len(st.Tables) != 1 || st.Tables[0] != w.Table {
			t.Fatalf("Classify(%q): Write %+v in %+v", sql, *w, st)
		}
		checkPreds(t, sql, w.Preds)
	}
	l := st.Lookup
	if l == nil {
		return
	}
	if st.Kind != KindRead || st.Locking || st.AllTables || len(st.Tables) != 0 || n != 1 {
		t.Fatalf("Classify(%q): Lookup in %+v of %d statements", sql, st, n)
	}
	if l.Table.Name == "" || l.Star != (l.Columns == nil) || len(l.Preds) == 0 {
		t.Fatalf("Classify(%q): malformed Lookup %+v", sql, *l)
	}
	for _, c := range l.Columns {
		if c.Column == "" || c.As == "" {
			t.Fatalf("Classify(%q): empty column in %+v", sql, *l)
		}
	}
	for _, o := range l.OrderBy {
		if o.Column == "" {
			t.Fatalf("Classify(%q): empty ORDER BY column in %+v", sql, *l)
		}
	}
	checkPreds(t, sql, l.Preds)
	for _, v := range []*Value{l.Limit, l.Offset} {
		if v != nil {
			checkValue(t, sql, *v)
		}
	}
	canon := l.String()
	back := Classify(canon)
	if len(back.Statements) != 1 || back.Statements[0].Lookup == nil ||
		back.Statements[0].Kind != KindRead || back.Statements[0].Locking ||
		!reflect.DeepEqual(*back.Statements[0].Lookup, *l) {
		var got any
		if len(back.Statements) == 1 && back.Statements[0].Lookup != nil {
			got = *back.Statements[0].Lookup
		}
		t.Fatalf("round trip: Classify(%q) gave\n %+v\nits String %q gave\n %+v", sql, *l, canon, got)
	}
}

func checkPreds(t *testing.T, sql string, preds []Pred) {
	t.Helper()
	for _, p := range preds {
		if p.Column == "" {
			t.Fatalf("Classify(%q): empty predicate column", sql)
		}
		switch p.Kind {
		case PredEq:
			checkValue(t, sql, p.Value)
		case PredAny:
			if p.Value.Param == 0 {
				t.Fatalf("Classify(%q): ANY without a parameter", sql)
			}
			checkValue(t, sql, p.Value)
		case PredIn:
			if len(p.List) == 0 {
				t.Fatalf("Classify(%q): empty IN list", sql)
			}
			for _, v := range p.List {
				checkValue(t, sql, v)
			}
		case PredIsNull:
		default:
			t.Fatalf("Classify(%q): predicate kind %v", sql, p.Kind)
		}
	}
}

func checkValue(t *testing.T, sql string, v Value) {
	t.Helper()
	if v.Param < 0 || v.Param > 65535 {
		t.Fatalf("Classify(%q): parameter $%d", sql, v.Param)
	}
	if v.Param == 0 && !v.String && v.Literal == "" {
		t.Fatalf("Classify(%q): empty literal", sql)
	}
	if v.Param != 0 && (v.Literal != "" || v.String) {
		t.Fatalf("Classify(%q): parameter with a literal: %+v", sql, v)
	}
}
