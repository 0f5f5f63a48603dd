package wtcache

import (
	"context"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/wtcache/wtcache/internal/recognize"
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
	user     bool // some function (or operator) of that name is not PostgreSQL's own
	volatile bool // and one of those may write (see funcsQuery)
	loaded   time.Time
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
	if c.c.cfg.redis == nil {
		return fx
	}
	if c.txStatus() == 0 {
		// Catalog facts are asked through pgx only (another driver's
		// statements pass through as before; see the README).
		return fx
	}
	if m := p.facts.Load(); m != nil && m.catalogs == c.c.catalogs.Load() && c.now().Sub(m.at) < c.c.cfg.schemaRefresh {
		return stmtFacts{dbWide: fx.dbWide || m.fx.dbWide, session: fx.session || m.fx.session, opaque: fx.opaque}
	}
	catalogs, at := c.c.catalogs.Load(), time.Now()
	var cf stmtFacts
	// A relation whose reading runs user code that may write (a view
	// calling such a function, a policy): a text that names one may run
	// it.
	hz, err := c.readHazards(ctx)
	switch {
	case err != nil:
		return stmtFacts{dbWide: true, session: true, opaque: fx.opaque}
	case recognize.MentionsAny(p.text, hz):
		cf = stmtFacts{dbWide: true, session: true}
	}
	if len(p.class.Calls) == 0 && len(p.class.Operators) == 0 && len(p.class.Attrs) == 0 {
		if c.txStatus() != 'E' {
			p.facts.Store(&factsMemo{fx: cf, catalogs: catalogs, at: at})
		}
		return stmtFacts{dbWide: fx.dbWide || cf.dbWide, session: fx.session || cf.session, opaque: fx.opaque}
	}
	for _, n := range p.class.Calls {
		if sqlRunners[n] {
			// query_to_xml('SELECT f()'), table_to_xml('v'::regclass):
			// the text or the relation it runs is a value, not a name.
			cf.dbWide, cf.session = true, true
		}
	}
	names := p.class.Calls
	if len(p.class.Operators) > 0 || len(p.class.Attrs) > 0 {
		names = make([]string, 0, len(p.class.Calls)+len(p.class.Operators)+len(p.class.Attrs))
		names = append(names, p.class.Calls...)
		for _, o := range p.class.Operators {
			names = append(names, opPrefix+o)
		}
		for _, a := range p.class.Attrs {
			if a == "?" {
				names = append(names, a) // a name it cannot read: widened
			} else {
				names = append(names, attrPrefix+a)
			}
		}
	}
	classes, err := c.funcClasses(ctx, names)
	if err != nil {
		return stmtFacts{dbWide: true, session: true, opaque: fx.opaque}
	}
	for _, fc := range classes {
		// An extension's C function taken at its word (STABLE,
		// IMMUTABLE) changes no setting; a function that may write may.
		cf.session = cf.session || fc.volatile
		cf.dbWide = cf.dbWide || fc.volatile
	}
	if c.txStatus() != 'E' {
		p.facts.Store(&factsMemo{fx: cf, catalogs: catalogs, at: at})
	}
	return stmtFacts{dbWide: fx.dbWide || cf.dbWide, session: fx.session || cf.session, opaque: fx.opaque}
}

// readHazards returns the names of the relations whose reading may run
// user code that may write (readHazardsQuery), from the connector's cache
// (no older than cache_schema_refresh, dropped with a catalog change) or
// the catalog.
func (c *conn) readHazards(ctx context.Context) (map[string]bool, error) {
	cn := c.c
	h := &cn.hazards
	catalogs := cn.catalogs.Load()
	h.mu.Lock()
	names, at, cat := h.names, h.at, h.catalogs
	h.mu.Unlock()
	if !at.IsZero() && cat == catalogs && time.Since(at) < cn.cfg.schemaRefresh {
		return names, nil
	}
	if c.inTx() && c.txStatus() == 'E' {
		// A failed transaction answers nothing; its statements fail too.
		return names, nil
	}
	start := time.Now()
	rows, err := c.catalogRead(ctx, readHazardsSQL)
	if err != nil {
		return nil, err
	}
	names = make(map[string]bool, len(rows))
	for _, r := range rows {
		names[asString(r[0])] = true
	}
	h.mu.Lock()
	h.names, h.at, h.catalogs = names, start, catalogs
	h.mu.Unlock()
	return names, nil
}

// readHazardState caches readHazards on the connector.
type readHazardState struct {
	mu       sync.Mutex
	names    map[string]bool
	at       time.Time
	catalogs int64
}

// factsMemo is what the catalog said of a plan's calls and operators.
type factsMemo struct {
	fx       stmtFacts
	catalogs int64
	at       time.Time
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

// funcsQuery classifies names called, operators used (prefixed opPrefix)
// and names that may call in attribute notation (prefixed attrPrefix), by the functions that implement them. A user function may
// write when it is VOLATILE, or when it is written in SQL or a procedural
// language whatever its marking: a STABLE function that calls a VOLATILE
// one writes too, and PostgreSQL does not forbid it. A STABLE or IMMUTABLE
// function in C (an extension's) is taken at its word.
const funcsQuery = `
WITH f AS (
  SELECT p.proname::pg_catalog.text AS name, p.oid, 0::pg_catalog.oid AS opr FROM pg_catalog.pg_proc p
  WHERE p.proname = ANY($1::pg_catalog.text[])
  UNION ALL
  SELECT pg_catalog.concat('` + opPrefix + `', o.oprname), o.oprcode::pg_catalog.oid, o.oid
  FROM pg_catalog.pg_operator o
  WHERE pg_catalog.concat('` + opPrefix + `', o.oprname) = ANY($1::pg_catalog.text[])
  UNION ALL
  SELECT pg_catalog.concat('` + attrPrefix + `', p.proname), p.oid, 0::pg_catalog.oid
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_type ty ON ty.oid = p.proargtypes[0]
  WHERE p.pronargs = 1 AND (ty.typrelid <> 0 OR ty.typtype = 'p')
    AND pg_catalog.concat('` + attrPrefix + `', p.proname) = ANY($1::pg_catalog.text[]))
SELECT f.name,
       pg_catalog.bool_or(f.oid >= 16384 OR f.opr >= 16384),
       pg_catalog.bool_or(f.oid >= 16384 AND ` + mayWritePred + `)
FROM f JOIN pg_catalog.pg_proc p ON p.oid = f.oid JOIN pg_catalog.pg_language l ON l.oid = p.prolang
GROUP BY f.name`

// sqlRunners are PostgreSQL's own functions that run a query given as
// text, or read relations named by a value: what they reach is not in the
// statement's text.
var sqlRunners = map[string]bool{
	"query_to_xml": true, "query_to_xmlschema": true, "query_to_xml_and_xmlschema": true,
	"cursor_to_xml": true, "cursor_to_xmlschema": true,
	"table_to_xml": true, "table_to_xmlschema": true, "table_to_xml_and_xmlschema": true,
	"schema_to_xml": true, "schema_to_xmlschema": true, "schema_to_xml_and_xmlschema": true,
	"database_to_xml": true, "database_to_xmlschema": true, "database_to_xml_and_xmlschema": true,
	"ts_stat": true, "ts_rewrite": true,
}

// opPrefix marks an operator among the names funcClasses classifies.
const opPrefix = "operator "

// attrPrefix marks a name read in attribute notation (t.f): the functions
// of that name and one composite (or polymorphic) argument, which t.f
// calls when t has no column f.
const attrPrefix = "attribute "

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
		if fc, ok := c.c.schema.funcClass(n, c.c.cfg.schemaRefresh); ok {
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
	rows, err := c.catalogRead(ctx, funcsSQL, missing)
	if err != nil {
		return nil, err
	}
	found := map[string]funcClass{}
	now := time.Now()
	for _, r := range rows {
		found[asString(r[0])] = funcClass{user: asBool(r[1]), volatile: asBool(r[2]), loaded: now}
	}
	for _, n := range missing {
		fc := found[n] // not a function at all: nothing to fear
		fc.loaded = now
		c.c.schema.putFuncClass(n, fc)
		out = append(out, fc)
	}
	return out, nil
}

// renderedEpoch adds to epoch the session's rendering settings (TimeZone,
// DateStyle, IntervalStyle, as the server reported them; extra_float_digits
// and bytea_output, as the session read them): images of tables
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
	// And the ones it does not report, as the session last read them.
	h.Write([]byte(c.sess.render))
	return epoch + "|" + strconv.FormatUint(h.Sum64(), 36), true
}
