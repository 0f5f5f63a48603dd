package recognizetest

import (
	"strings"
	"testing"

	"github.com/wtcache/wtcache/internal/recognize"
)

// TestOracle checks the reference itself: deriveLookup on hand-written
// expectations, deriveLookup refusing what is no key lookup, and
// lookupsEqual noticing every kind of difference. Without it a differential
// test that always agrees would prove nothing.
func TestOracle(t *testing.T) {
	v := func(lit string) recognize.Value { return recognize.Value{Literal: lit} }
	s := func(lit string) recognize.Value { return recognize.Value{Literal: lit, String: true} }
	p := func(n int) recognize.Value { return recognize.Value{Param: n} }
	ptr := func(x recognize.Value) *recognize.Value { return &x }
	eq := func(col string, x recognize.Value) recognize.Pred {
		return recognize.Pred{Column: col, Kind: recognize.PredEq, Value: x}
	}

	want := []struct {
		sql string
		l   recognize.Lookup
	}{
		{`SELECT * FROM "users" WHERE "users"."id" = $1 AND "users"."deleted_at" IS NULL ORDER BY "users"."id" LIMIT $2`, recognize.Lookup{
			Table: recognize.Table{Name: "users"}, Star: true,
			Preds:   []recognize.Pred{eq("id", p(1)), {Column: "deleted_at", Kind: recognize.PredIsNull}},
			OrderBy: []recognize.OrderCol{{Column: "id"}}, Limit: ptr(p(2)),
		}},
		{`SELECT "a"."id", "a"."owner" AS o FROM "App"."accounts" AS "a" WHERE ("a"."id" = -5) AND owner IN ('x', $3, 2.50) OFFSET 7`, recognize.Lookup{
			Table: recognize.Table{Schema: "App", Name: "accounts"}, Alias: "a",
			Columns: []recognize.OutCol{{Column: "id", As: "id"}, {Column: "owner", As: "o"}},
			Preds: []recognize.Pred{eq("id", v("-5")),
				{Column: "owner", Kind: recognize.PredIn, List: []recognize.Value{s("x"), p(3), v("2.50")}}},
			Offset: ptr(v("7")),
		}},
		{`SELECT a AS b, b AS a FROM T WHERE 'it''s' = A AND b = ANY($2) ORDER BY a DESC, t.a FETCH FIRST ROW ONLY`, recognize.Lookup{
			Table:   recognize.Table{Name: "t"},
			Columns: []recognize.OutCol{{Column: "a", As: "b"}, {Column: "b", As: "a"}},
			Preds:   []recognize.Pred{eq("a", s("it's")), {Column: "b", Kind: recognize.PredAny, Value: p(2)}},
			OrderBy: []recognize.OrderCol{{Column: "b", Desc: true}, {Column: "a"}},
			Limit:   ptr(v("1")),
		}},
		{`SELECT x.* FROM s.` + strings.Repeat("Q", 70) + ` x WHERE id = E'\x41\n'`, recognize.Lookup{
			Table: recognize.Table{Schema: "s", Name: strings.Repeat("q", 63)}, Alias: "x", Star: true,
			Preds: []recognize.Pred{eq("id", s("A\n"))},
		}},
	}
	for _, tc := range want {
		res, err := parse(tc.sql)
		if err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
		got, why := deriveLookup(res)
		if got == nil {
			t.Errorf("deriveLookup(%q): nil (%s)", tc.sql, why)
			continue
		}
		if d := lookupsEqual(got, &tc.l); d != "" {
			t.Errorf("deriveLookup(%q): %s\n\tgot  %s\n\twant %s", tc.sql, d, dump(got), dump(&tc.l))
		}
		// Every perturbation must be noticed.
		for name, change := range perturbations {
			c := cloneLookup(&tc.l)
			if !change(c) {
				continue
			}
			if lookupsEqual(c, got) == "" {
				t.Errorf("%q: lookupsEqual misses the perturbation %q", tc.sql, name)
			}
		}
	}

	for _, sql := range []string{
		"SELECT * FROM ONLY t WHERE id = 1",
		"SELECT * FROM t TABLESAMPLE SYSTEM (1) WHERE id = 1",
		"SELECT * FROM t AS u(a) WHERE a = 1",
		"SELECT * FROM t, u WHERE id = 1",
		"SELECT * FROM db.s.t WHERE id = 1",
		"SELECT DISTINCT * FROM t WHERE id = 1",
		"SELECT * INTO x FROM t WHERE id = 1",
		"WITH c AS (SELECT 1) SELECT * FROM t WHERE id = 1",
		"SELECT * FROM t WHERE id = 1 GROUP BY id",
		"SELECT * FROM t WHERE id = 1 HAVING true",
		"SELECT * FROM t WHERE id = 1 WINDOW w AS ()",
		"SELECT * FROM t WHERE id = 1 UNION SELECT * FROM t WHERE id = 2",
		"SELECT * FROM t WHERE id = 1 FOR UPDATE",
		"SELECT * FROM t WHERE id = 1 FOR KEY SHARE",
		"SELECT * FROM t WHERE id = 1; SELECT 1",
		"SELECT * FROM t",
		"SELECT * FROM t WHERE id = 1 OR id = 2",
		"SELECT * FROM t WHERE NOT id = 1",
		"SELECT * FROM t WHERE id <> 1",
		"SELECT * FROM t WHERE id IS NOT NULL",
		"SELECT * FROM t WHERE id = $1::varchar(3)",
		"SELECT * FROM t WHERE id = $1::char",
		"SELECT * FROM t WHERE id = -5::int",
		"SELECT * FROM t WHERE id = $1::myschema.int8",
		"SELECT * FROM t WHERE id = $1::int::text",
		"SELECT * FROM t WHERE id = true",
		"SELECT * FROM t WHERE id = NULL",
		"SELECT * FROM t WHERE id = B'1'",
		"SELECT * FROM t WHERE id = $0",
		"SELECT * FROM t WHERE id = $65536",
		"SELECT * FROM t WHERE id = other",
		"SELECT * FROM t WHERE id OPERATOR(pg_catalog.=) 1",
		"SELECT * FROM t WHERE id NOT IN (1)",
		"SELECT * FROM t WHERE id = ANY(ARRAY[1])",
		"SELECT * FROM t WHERE id = ALL($1)",
		"SELECT * FROM t u WHERE t.id = 1",
		"SELECT t.* FROM t u WHERE id = 1",
		"SELECT * FROM t WHERE x.id = 1",
		"SELECT * FROM t WHERE public.t.id = 1",
		"SELECT * FROM s.t u WHERE s.t.id = 1",
		"SELECT id.x FROM t WHERE id = 1",
		"SELECT *, id FROM t WHERE id = 1",
		"SELECT id + 1 FROM t WHERE id = 1",
		"SELECT a AS x, b AS x FROM t WHERE a = 1 ORDER BY x",
		"SELECT * FROM t WHERE id = 1 ORDER BY id NULLS FIRST",
		"SELECT * FROM t WHERE id = 1 ORDER BY id USING <",
		"SELECT * FROM t WHERE id = 1 ORDER BY 1",
		"SELECT * FROM t WHERE id = 1 LIMIT ALL",
		"SELECT * FROM t WHERE id = 1 LIMIT -1",
		"SELECT * FROM t WHERE id = 1 LIMIT 1.5",
		"SELECT * FROM t WHERE id = 1 LIMIT '1'",
		"SELECT * FROM t WHERE id = 1 ORDER BY id FETCH FIRST 1 ROWS WITH TIES",
		"DELETE FROM t WHERE id = 1",
		"VALUES (1)",
	} {
		res, err := parse(sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if l, _ := deriveLookup(res); l != nil {
			t.Errorf("deriveLookup(%q) = %s, want nil", sql, dump(l))
		}
	}

	for sql, wantWrite := range map[string]bool{
		"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d": true,
		"EXPLAIN ANALYZE UPDATE t SET a = 1":                    true,
		`EXPLAIN ("analyze") INSERT INTO t VALUES (1)`:          true,
		"EXPLAIN (ANALYZE 1) DELETE FROM t":                     true,
		"COPY (DELETE FROM t RETURNING *) TO STDOUT":            true,
		"COPY t FROM STDIN":                                     true,
		"TRUNCATE t":                                            true,
		"MERGE INTO t USING u ON true WHEN MATCHED THEN DELETE": true,
		"EXPLAIN DELETE FROM t":                                 false,
		"EXPLAIN (ANALYZE off) DELETE FROM t":                   false,
		"EXPLAIN (ANALYZE 0) DELETE FROM t":                     false,
		"PREPARE p AS DELETE FROM t":                            false,
		"COPY t TO STDOUT":                                      false,
		"SELECT * FROM t FOR UPDATE":                            false,
	} {
		res, err := parse(sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if got := writeIn(res.Stmts[0].ProtoReflect()) != ""; got != wantWrite {
			t.Errorf("writeIn(%q) = %v, want %v", sql, got, wantWrite)
		}
	}
}

var perturbations = map[string]func(l *recognize.Lookup) bool{
	"schema":    func(l *recognize.Lookup) bool { l.Table.Schema += "x"; return true },
	"table":     func(l *recognize.Lookup) bool { l.Table.Name += "x"; return true },
	"alias":     func(l *recognize.Lookup) bool { l.Alias += "x"; return true },
	"star":      func(l *recognize.Lookup) bool { l.Star = !l.Star; return true },
	"drop pred": func(l *recognize.Lookup) bool { l.Preds = l.Preds[1:]; return true },
	"pred column": func(l *recognize.Lookup) bool {
		l.Preds[0].Column += "x"
		return true
	},
	"pred kind": func(l *recognize.Lookup) bool { l.Preds[0].Kind = (l.Preds[0].Kind + 1) % 4; return true },
	"pred param": func(l *recognize.Lookup) bool {
		l.Preds[0].Value.Param++
		return true
	},
	"pred literal": func(l *recognize.Lookup) bool {
		if l.Preds[0].Value.Param != 0 || l.Preds[0].Kind != recognize.PredEq {
			return false
		}
		l.Preds[0].Value.Literal += "0"
		return true
	},
	"pred string flag": func(l *recognize.Lookup) bool {
		if l.Preds[0].Kind != recognize.PredEq {
			return false
		}
		l.Preds[0].Value.String = !l.Preds[0].Value.String
		return true
	},
	"swap preds": func(l *recognize.Lookup) bool {
		if len(l.Preds) < 2 {
			return false
		}
		l.Preds[0], l.Preds[1] = l.Preds[1], l.Preds[0]
		return true
	},
	"list item": func(l *recognize.Lookup) bool {
		for i := range l.Preds {
			if len(l.Preds[i].List) > 0 {
				l.Preds[i].List[len(l.Preds[i].List)-1].Literal += "1"
				return true
			}
		}
		return false
	},
	"decimal text": func(l *recognize.Lookup) bool {
		for i := range l.Preds {
			for k, x := range l.Preds[i].List {
				if strings.Contains(x.Literal, ".") && !x.String {
					l.Preds[i].List[k].Literal = strings.TrimRight(x.Literal, "0")
					return true
				}
			}
		}
		return false
	},
	"column": func(l *recognize.Lookup) bool {
		if len(l.Columns) == 0 {
			return false
		}
		l.Columns[0].Column += "x"
		return true
	},
	"output name": func(l *recognize.Lookup) bool {
		if len(l.Columns) == 0 {
			return false
		}
		l.Columns[len(l.Columns)-1].As += "x"
		return true
	},
	"order column": func(l *recognize.Lookup) bool {
		if len(l.OrderBy) == 0 {
			return false
		}
		l.OrderBy[0].Column += "x"
		return true
	},
	"order desc": func(l *recognize.Lookup) bool {
		if len(l.OrderBy) == 0 {
			return false
		}
		l.OrderBy[len(l.OrderBy)-1].Desc = !l.OrderBy[len(l.OrderBy)-1].Desc
		return true
	},
	"drop order": func(l *recognize.Lookup) bool {
		if len(l.OrderBy) == 0 {
			return false
		}
		l.OrderBy = nil
		return true
	},
	"limit": func(l *recognize.Lookup) bool {
		if l.Limit == nil {
			l.Limit = &recognize.Value{Literal: "1"}
		} else {
			l.Limit = nil
		}
		return true
	},
	"offset value": func(l *recognize.Lookup) bool {
		if l.Offset == nil {
			return false
		}
		l.Offset = &recognize.Value{Literal: l.Offset.Literal + "1"}
		return true
	},
}

func cloneLookup(l *recognize.Lookup) *recognize.Lookup {
	c := *l
	c.Columns = append([]recognize.OutCol(nil), l.Columns...)
	c.OrderBy = append([]recognize.OrderCol(nil), l.OrderBy...)
	c.Preds = make([]recognize.Pred, len(l.Preds))
	for i, p := range l.Preds {
		p.List = append([]recognize.Value(nil), p.List...)
		c.Preds[i] = p
	}
	if l.Limit != nil {
		x := *l.Limit
		c.Limit = &x
	}
	if l.Offset != nil {
		x := *l.Offset
		c.Offset = &x
	}
	return &c
}
