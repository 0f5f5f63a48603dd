package recognize

import (
	"reflect"
	"strings"
	"testing"
)

func TestLookupString(t *testing.T) {
	tests := []struct {
		name string
		l    Lookup
		want string
	}{
		{
			"star with everything",
			Lookup{Table: stbl("s", "t"), Star: true, Preds: []Pred{eq("id", par(1)), in("k", num("-1"), str("x")), anyOf("a", 2), isNull("d")},
				OrderBy: []OrderCol{asc("id"), desc("k")}, Limit: vp(par(3)), Offset: vp(num("0"))},
			`SELECT * FROM "s"."t" WHERE "t"."id" = $1 AND "t"."k" IN (-1, 'x') AND "t"."a" = ANY($2) AND "t"."d" IS NULL ORDER BY "t"."id", "t"."k" DESC LIMIT $3 OFFSET 0`,
		},
		{
			"columns, alias, awkward names and strings",
			Lookup{Table: tbl(`we"ird`), Alias: "A b", Columns: []OutCol{{Column: "id", As: "Key"}, {Column: `c"`, As: `c"`}},
				Preds: []Pred{eq("name", str(`it's a \ path`)), eq("n", str("O'Brien"))}},
			`SELECT "A b"."id" AS "Key", "A b"."c""" AS "c""" FROM "we""ird" AS "A b" WHERE "A b"."name" = E'it''s a \\ path' AND "A b"."n" = 'O''Brien'`,
		},
		{
			"long names",
			Lookup{Table: tbl(strings.Repeat("é", 31)), Star: true, Preds: []Pred{eq(strings.Repeat("x", 63), num("1.5e-3"))}},
			`SELECT * FROM "` + strings.Repeat("é", 31) + `" WHERE "` + strings.Repeat("é", 31) + `"."` + strings.Repeat("x", 63) + `" = 1.5e-3`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.l.String()
			if got != tc.want {
				t.Fatalf("String() =\n %s\nwant\n %s", got, tc.want)
			}
			back := lookupOf(t, got)
			if back == nil || !reflect.DeepEqual(*back, tc.l) {
				t.Fatalf("Classify(%q) = %+v, want %+v", got, back, tc.l)
			}
		})
	}
}

func TestStringers(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{KindUnknown.String(), "Unknown"}, {KindRead.String(), "Read"}, {KindWrite.String(), "Write"},
		{KindDDL.String(), "DDL"}, {KindTx.String(), "Tx"}, {KindSession.String(), "Session"}, {Kind(99).String(), "Kind(?)"},
		{TxNone.String(), "None"}, {TxBegin.String(), "Begin"}, {TxCommit.String(), "Commit"},
		{TxRollback.String(), "Rollback"}, {TxSavepoint.String(), "Savepoint"}, {TxRelease.String(), "Release"},
		{TxRollbackTo.String(), "RollbackTo"}, {TxOther.String(), "Other"}, {TxOp(99).String(), "TxOp(?)"},
		{PredEq.String(), "Eq"}, {PredIn.String(), "In"}, {PredAny.String(), "Any"}, {PredIsNull.String(), "IsNull"},
		{PredKind(99).String(), "PredKind(?)"},
	} {
		if tc.got != tc.want {
			t.Errorf("String() = %q, want %q", tc.got, tc.want)
		}
	}
}
