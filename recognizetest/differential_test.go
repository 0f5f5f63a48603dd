package recognizetest

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/wtcache/wtcache/internal/recognize"
)

// TestDifferential holds recognize.Classify to PostgreSQL's own grammar
// (pg_query, PostgreSQL 17) over the whole corpus:
//
//   - every Lookup the recognizer returns must be for a text the server
//     parses, and be exactly the Lookup derived from the server's parse tree
//     (deriveLookup): a false Lookup would serve wrong data. Where pg_query
//     (PostgreSQL 17) is more lenient than the servers this project runs
//     on, the test applies the server's rule: $1abc is trailing junk, and a
//     vertical tab between tokens is a syntax error before PostgreSQL 16;
//   - no statement that runs an INSERT, UPDATE, DELETE, MERGE, TRUNCATE or
//     COPY FROM anywhere (WITH, EXPLAIN ANALYZE, COPY (...) TO) may be
//     KindRead: a write taken for a read skips invalidation;
//   - the recognizer must cut a text into the statements the server runs.
//
// The other direction, key-lookup shapes the recognizer refuses, is only
// counted and logged (run with -v): the recognizer may be conservative.
func TestDifferential(t *testing.T) {
	start := time.Now()
	entries := buildCorpus(t)
	built := time.Since(start)
	if len(entries) < 5000 {
		t.Fatalf("corpus has %d statements, want at least 5000", len(entries))
	}
	var st stats
	failures := map[string][]string{} // kind of failure -> messages
	for _, e := range entries {
		for _, f := range check(e.sql, &st) {
			failures[f.kind] = append(failures[f.kind], fmt.Sprintf("[%s] %s\n\tSQL: %q", e.origin, f.msg, e.sql))
		}
		if st.lastParsed {
			st.parsedBy[originKind(e.origin)]++
		}
		st.byOrigin[originKind(e.origin)]++
	}
	t.Logf("corpus: %d statements (%s); built in %v, checked in %v",
		len(entries), st.originSummary(), built.Round(time.Millisecond), (time.Since(start) - built).Round(time.Millisecond))
	t.Logf("PostgreSQL parses %d; the recognizer returned %d Lookups (%d verified against the parse tree); %d statements run writes (each checked not KindRead)",
		st.parsed, st.lookups, st.verified, st.writeStmts)
	logGaps(t, &st)
	if st.verified < 1000 {
		t.Errorf("only %d Lookups verified: the corpus does not exercise the accepting path", st.verified)
	}
	if st.writeStmts < 1000 {
		t.Errorf("only %d write statements: the corpus does not exercise the write path", st.writeStmts)
	}
	for _, kind := range sortedKeys(failures) {
		msgs := failures[kind]
		sort.Slice(msgs, func(i, j int) bool { return len(msgs[i]) < len(msgs[j]) })
		const show = 40
		t.Errorf("%s: %d statements", kind, len(msgs))
		for i, m := range msgs {
			if i == show {
				t.Errorf("  ... and %d more", len(msgs)-show)
				break
			}
			t.Errorf("  %s", m)
		}
	}
}

// FuzzDifferential runs the same checks on arbitrary text; its seeds are the
// corpus file. go test -fuzz=FuzzDifferential ./... searches further.
func FuzzDifferential(f *testing.F) {
	for _, e := range fileCorpus(f) {
		f.Add(e.sql)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		var st stats
		for _, fl := range check(sql, &st) {
			t.Errorf("%s: %s\n\tSQL: %q", fl.kind, fl.msg, sql)
		}
	})
}

type stats struct {
	parsed, lookups, verified, writeStmts int
	lastParsed                            bool
	gaps                                  []string // key-lookup shapes refused
	byOrigin, parsedBy                    map[string]int
}

func (s *stats) originSummary() string {
	var parts []string
	for _, k := range sortedKeys(s.byOrigin) {
		parts = append(parts, fmt.Sprintf("%s %d (parsed %d)", k, s.byOrigin[k], s.parsedBy[k]))
	}
	return strings.Join(parts, ", ")
}

type failure struct{ kind, msg string }

// parse parses sql as the server would receive it: the server rejects a text
// with a NUL byte or invalid UTF-8 before parsing (and pg_query, which takes
// a C string, would silently cut the text at a NUL).
func parse(sql string) (*pg.ParseResult, error) {
	if strings.IndexByte(sql, 0) >= 0 {
		return nil, fmt.Errorf("text contains a NUL byte")
	}
	if !utf8.ValidString(sql) {
		return nil, fmt.Errorf("text is not valid UTF-8")
	}
	res, err := pg.Parse(sql)
	if err != nil {
		return nil, err
	}
	if err := paramJunk(sql); err != nil {
		return nil, err
	}
	return res, nil
}

// vtabOutsideTokens returns the position of a vertical tab that separates
// tokens, or -1. PostgreSQL 16 made \v white space; PostgreSQL 15 and
// earlier (this project's test server is 15) reject it as a syntax error.
// Inside a literal, quoted identifier or comment it is fine everywhere.
func vtabOutsideTokens(sql string) int {
	if !strings.Contains(sql, "\v") {
		return -1
	}
	sc, err := pg.Scan(sql)
	if err != nil {
		return -1
	}
	covered := make([]bool, len(sql))
	for _, t := range sc.Tokens {
		for i := t.Start; i < t.End && int(i) < len(sql); i++ {
			covered[i] = true
		}
	}
	for i := 0; i < len(sql); i++ {
		if sql[i] == '\v' && !covered[i] {
			return i
		}
	}
	return -1
}

// paramJunk reports the server's "trailing junk after parameter" error
// (PostgreSQL 15 and later reject $1abc and $1_), which pg_query's scanner,
// patched for its own use of $n, does not raise: it reads $1 and an
// identifier.
func paramJunk(sql string) error {
	if !strings.Contains(sql, "$") {
		return nil
	}
	sc, err := pg.Scan(sql)
	if err != nil {
		return err
	}
	for _, t := range sc.Tokens {
		if t.Token != pg.Token_PARAM || int(t.End) >= len(sql) {
			continue
		}
		if c := sql[t.End]; c == '_' || c >= 0x80 || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			return fmt.Errorf("trailing junk after parameter at or near %q", sql[t.Start:])
		}
	}
	return nil
}

// check classifies and parses one text and returns what is wrong.
func check(sql string, st *stats) []failure {
	if st.byOrigin == nil {
		st.byOrigin, st.parsedBy = map[string]int{}, map[string]int{}
	}
	var fails []failure
	fail := func(kind, format string, args ...any) {
		fails = append(fails, failure{kind, fmt.Sprintf(format, args...)})
	}
	cl := recognize.Classify(sql)
	res, perr := parse(sql)
	st.lastParsed = perr == nil
	if perr == nil {
		st.parsed++
	}

	// 1. Lookups.
	var got *recognize.Lookup
	for i, s := range cl.Statements {
		if s.Lookup == nil {
			continue
		}
		st.lookups++
		got = s.Lookup
		if len(cl.Statements) != 1 {
			fail("Lookup in a text of several statements", "statement %d of %d has Lookup %s", i+1, len(cl.Statements), got)
		}
		if s.Kind != recognize.KindRead || s.Locking {
			fail("Lookup on a statement that is not a plain read", "Kind %v, Locking %v", s.Kind, s.Locking)
		}
	}
	if got != nil {
		switch {
		case perr != nil:
			fail("Lookup for a text PostgreSQL rejects", "Lookup %s; PostgreSQL: %v", got, perr)
		case vtabOutsideTokens(sql) >= 0:
			fail("Lookup for a text PostgreSQL 15 rejects", "Lookup %s; a vertical tab at byte %d is white space only since PostgreSQL 16 (a syntax error before)", got, vtabOutsideTokens(sql))
		default:
			want, why := deriveLookup(res)
			if want == nil {
				fail("Lookup for a statement that is not a key lookup", "Lookup %s; PostgreSQL's parse tree: %s", got, why)
				break
			}
			if diff := diffLookups(got, want); diff != "" {
				fail("Lookup differs from PostgreSQL's parse tree", "%s", diff)
				break
			}
			st.verified++
		}
	} else if perr == nil {
		if want, _ := deriveLookup(res); want != nil {
			st.gaps = append(st.gaps, sql)
		}
	}
	if perr != nil {
		return fails
	}

	// 2. Statement boundaries.
	unknownText := len(cl.Statements) == 1 && cl.Statements[0].Kind == recognize.KindUnknown && cl.Statements[0].AllTables
	if len(cl.Statements) != len(res.Stmts) && !unknownText {
		fail("statement boundaries differ from PostgreSQL's", "recognizer: %d statements %s; PostgreSQL: %d",
			len(cl.Statements), kinds(cl), len(res.Stmts))
	}

	// 3. Writes.
	for i, raw := range res.Stmts {
		w := writeIn(raw.ProtoReflect())
		if w == "" {
			continue
		}
		st.writeStmts++
		if len(cl.Statements) == len(res.Stmts) {
			if cl.Statements[i].Kind == recognize.KindRead {
				fail("write classified as KindRead", "statement %d runs %s", i+1, w)
			}
			continue
		}
		for _, s := range cl.Statements {
			if s.Kind == recognize.KindRead {
				fail("write classified as KindRead", "statement %d (of PostgreSQL's %d) runs %s; recognizer: %s", i+1, len(res.Stmts), w, kinds(cl))
				break
			}
		}
	}
	return fails
}

func kinds(cl recognize.Classification) string {
	var ks []string
	for _, s := range cl.Statements {
		k := s.Kind.String()
		if s.Tx != recognize.TxNone {
			k += "/" + s.Tx.String()
		}
		ks = append(ks, k)
	}
	return "[" + strings.Join(ks, " ") + "]"
}

// diffLookups compares the recognizer's Lookup with the one derived from
// the parse tree.
func diffLookups(got, want *recognize.Lookup) string {
	if d := lookupsEqual(got, want); d != "" {
		return fmt.Sprintf("%s\n\trecognizer: %s\n\tPostgreSQL: %s", d, dump(got), dump(want))
	}
	return ""
}

// dump prints a Lookup with every field, values included.
func dump(l *recognize.Lookup) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table=%q.%q alias=%q star=%v cols=%v preds=[", l.Table.Schema, l.Table.Name, l.Alias, l.Star, l.Columns)
	for i, p := range l.Preds {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%q %v %s", p.Column, p.Kind, dumpValue(&p.Value))
		for _, v := range p.List {
			b.WriteString(" " + dumpValue(&v))
		}
	}
	fmt.Fprintf(&b, "] order=%v limit=%s offset=%s", l.OrderBy, dumpValue(l.Limit), dumpValue(l.Offset))
	return b.String()
}

func dumpValue(v *recognize.Value) string {
	s := dumpValueOnly(v)
	if v != nil && v.Cast != "" {
		s += "::" + v.Cast
	}
	return s
}

func dumpValueOnly(v *recognize.Value) string {
	switch {
	case v == nil:
		return "-"
	case v.Param > 0:
		return fmt.Sprintf("$%d", v.Param)
	case v.String:
		return fmt.Sprintf("str(%q)", v.Literal)
	}
	return fmt.Sprintf("num(%s)", v.Literal)
}

// logGaps logs the key-lookup shapes (by PostgreSQL's parse tree) that the
// recognizer refused, shortest first; with RECOGNIZETEST_GAPS=file it also
// writes all of them to file, one JSON string a line.
func logGaps(t *testing.T, st *stats) {
	gaps := st.gaps
	sort.Slice(gaps, func(i, j int) bool {
		if len(gaps[i]) != len(gaps[j]) {
			return len(gaps[i]) < len(gaps[j])
		}
		return gaps[i] < gaps[j]
	})
	t.Logf("key-lookup shapes the recognizer refuses (not a failure): %d", len(gaps))
	if path := os.Getenv("RECOGNIZETEST_GAPS"); path != "" {
		var b strings.Builder
		for _, sql := range gaps {
			line, _ := json.Marshal(sql)
			b.Write(line)
			b.WriteByte('\n')
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		} else {
			t.Logf("all of them written to %s", path)
		}
	}
	const show = 40
	for i, sql := range gaps {
		if i == show {
			t.Logf("  ... and %d more", len(gaps)-show)
			break
		}
		t.Logf("  gap: %q", sql)
	}
}

// TestCorpusFileOutcomes logs, with -v, what the recognizer and PostgreSQL
// make of each hand-written case: a review aid, it fails on nothing that
// TestDifferential does not already report.
func TestCorpusFileOutcomes(t *testing.T) {
	for _, e := range fileCorpus(t) {
		cl := recognize.Classify(e.sql)
		res, err := parse(e.sql)
		pgSays := "PostgreSQL: error"
		if err == nil {
			if l, why := deriveLookup(res); l != nil {
				pgSays = "PostgreSQL: lookup"
			} else {
				pgSays = "PostgreSQL: no lookup (" + why + ")"
			}
		}
		var got string
		if len(cl.Statements) == 1 && cl.Statements[0].Lookup != nil {
			got = "recognizer: LOOKUP " + cl.Statements[0].Lookup.String()
		} else {
			got = "recognizer: " + kinds(cl)
		}
		t.Logf("%-9s %s | %s | %q", e.origin, got, pgSays, e.sql)
	}
}
