package wtcache

import (
	"context"
	"hash/fnv"
	"strconv"

	"github.com/jackc/pgx/v5/stdlib"
)

// What a statement may do beyond what its text names, from the catalog and
// the session's own settings: user functions it calls (they may write any
// table, change the search path or the role), and string constants whose
// meaning depends on standard_conforming_strings.

// stmtFacts is what one statement may do that its classification does not
// say.
type stmtFacts struct {
	// dbWide: its reach cannot be bounded (a volatile user function, a
	// text the lexer cannot follow under the session's settings): it runs
	// under the database fence.
	dbWide bool
	// session: it may change session state (the search path, the role):
	// what the session knows is loaded again after it.
	session bool
	// opaque: the text cannot be read as the server reads it: never a
	// lookup.
	opaque bool
}

// funcClass is what the catalog says of a name called as a function.
type funcClass struct {
	user     bool // some function of that name is not PostgreSQL's own
	volatile bool // and one of those is VOLATILE: it may write
}

// facts finds what the statement of p may do on this session. A catalog
// error widens: the statement is taken to reach everything.
func (c *conn) facts(ctx context.Context, p *plan) stmtFacts {
	var fx stmtFacts
	if p.class.Backslash && c.stringsNotStandard() {
		// 'x\'' ...: with standard_conforming_strings off the server
		// reads the text otherwise than the lexer did.
		fx = stmtFacts{dbWide: true, session: true, opaque: true}
	}
	if len(p.class.Calls) == 0 || c.c.cfg.redis == nil {
		return fx
	}
	if c.txStatus() == 0 {
		// Catalog facts are asked through pgx only (another driver's
		// statements pass through as before; see the README).
		return fx
	}
	classes, err := c.funcClasses(ctx, p.class.Calls)
	if err != nil {
		return stmtFacts{dbWide: true, session: true, opaque: fx.opaque}
	}
	for _, fc := range classes {
		fx.session = fx.session || fc.user
		fx.dbWide = fx.dbWide || fc.volatile
	}
	return fx
}

// stringsNotStandard reports whether the session may read backslashes in
// plain strings as escapes: standard_conforming_strings is off, or the
// driver does not say.
func (c *conn) stringsNotStandard() bool {
	if sc, ok := c.inner.(*stdlib.Conn); ok {
		return sc.Conn().PgConn().ParameterStatus("standard_conforming_strings") != "on"
	}
	return true
}

const funcsQuery = `
SELECT p.proname::text,
       bool_or(n.nspname NOT IN ('pg_catalog', 'information_schema')),
       bool_or(n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.provolatile = 'v')
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.proname = ANY($1::text[])
GROUP BY p.proname`

// funcClasses classifies names, from the connector's cache (cleared with
// its schema knowledge) or the catalog. A name it cannot read ("?") is a
// volatile user function.
func (c *conn) funcClasses(ctx context.Context, names []string) ([]funcClass, error) {
	out := make([]funcClass, 0, len(names))
	var missing []string
	for _, n := range names {
		if n == "?" {
			out = append(out, funcClass{user: true, volatile: true})
			continue
		}
		if fc, ok := c.c.schema.funcClass(n); ok {
			out = append(out, fc)
			continue
		}
		missing = append(missing, n)
	}
	if len(missing) == 0 {
		return out, nil
	}
	if c.inTx() && c.txStatus() == 'E' {
		// A failed transaction answers nothing: widen.
		return []funcClass{{user: true, volatile: true}}, nil
	}
	rows, err := c.innerQuery(ctx, funcsQuery, missing)
	if err != nil {
		return nil, err
	}
	found := map[string]funcClass{}
	for _, r := range rows {
		found[asString(r[0])] = funcClass{user: asBool(r[1]), volatile: asBool(r[2])}
	}
	for _, n := range missing {
		fc := found[n] // not a function at all: nothing to fear
		c.c.schema.putFuncClass(n, fc)
		out = append(out, fc)
	}
	return out, nil
}

// renderedEpoch adds to epoch the session's rendering settings (TimeZone,
// DateStyle, IntervalStyle, as the server reported them): images of tables
// whose values the server renders as text are served only to sessions that
// render them alike. ok is false when the driver does not report them.
func (c *conn) renderedEpoch(epoch string) (string, bool) {
	sc, ok := c.inner.(*stdlib.Conn)
	if !ok {
		return epoch, false
	}
	pc := sc.Conn().PgConn()
	h := fnv.New64a()
	for _, p := range []string{"TimeZone", "DateStyle", "IntervalStyle"} {
		h.Write([]byte(pc.ParameterStatus(p)))
		h.Write([]byte{0})
	}
	return epoch + "|" + strconv.FormatUint(h.Sum64(), 36), true
}
