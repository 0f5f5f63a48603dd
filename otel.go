package wtcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Observability. Every database/sql operation that goes through wtcache
// gets one client span, named as the OpenTelemetry database conventions ask
// ("SELECT accounts", "UPDATE accounts", "COMMIT"), with a child span for
// each step it takes. Metrics count operations by outcome and time every
// step. Attribute cardinality is bounded: table and operation, never a key
// or a statement's text.

// Span names of the steps.
const (
	SpanCacheLookup  = "wtcache.cache.lookup"  // reading rows from Redis
	SpanDBQuery      = "wtcache.db.query"      // a statement sent to PostgreSQL through Query
	SpanDBExec       = "wtcache.db.exec"       // a statement sent to PostgreSQL through Exec
	SpanCacheFill    = "wtcache.cache.fill"    // storing rows read on a miss (after the caller has them)
	SpanCacheIntents = "wtcache.cache.intents" // placing write intents before a write can commit
	SpanDBCommit     = "wtcache.db.commit"     // COMMIT sent to PostgreSQL
	SpanCacheRelease = "wtcache.cache.release" // mirroring or invalidating after a write (after the caller returned)
	SpanFeedApply    = "wtcache.feed.apply"    // the change feed applying one committed transaction to Redis
)

// Attribute keys: the database conventions' and wtcache's own.
const (
	attrDBSystem     = attribute.Key("db.system.name")
	attrDBNamespace  = attribute.Key("db.namespace")
	attrDBCollection = attribute.Key("db.collection.name")
	attrDBOperation  = attribute.Key("db.operation.name")
	attrDBQueryText  = attribute.Key("db.query.text")
	attrServerAddr   = attribute.Key("server.address")
	attrErrorType    = attribute.Key("error.type")
	attrOutcome      = attribute.Key("wtcache.outcome")       // hit, miss, partial, bypass, write
	attrReason       = attribute.Key("wtcache.bypass.reason") // why a lookup went to PostgreSQL whole
	attrMissReason   = attribute.Key("wtcache.miss.reason")   // why (the first) key of a lookup was read from PostgreSQL
	attrBypassDetail = attribute.Key("wtcache.bypass.detail") // spans only: why a table is not cacheable
	attrKeys         = attribute.Key("wtcache.keys")          // keys looked up, or written by key
	attrHits         = attribute.Key("wtcache.hits")
	attrMisses       = attribute.Key("wtcache.misses")
	attrTables       = attribute.Key("wtcache.tables")           // tables invalidated table-wide
	attrBumps        = attribute.Key("wtcache.generation_bumps") // table generations moved
	attrPolicy       = attribute.Key("wtcache.policy")           // fail or fallback
	attrDecision     = attribute.Key("wtcache.policy.decision")  // refused, fallback
	attrStored       = attribute.Key("wtcache.stored")           // images stored by a fill or a mirror
	attrStep         = attribute.Key("wtcache.step")
)

// WithTracerProvider sets where spans go. Default: the global provider
// (otel.GetTracerProvider), which records nothing until a program installs
// an SDK.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider sets where metrics go. Default: the global provider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithQueryText records the statement's text as db.query.text. Only the
// text is recorded (with its $n placeholders), never argument values; a
// statement with inlined literals records them, so it is off by default.
func WithQueryText(on bool) Option {
	return func(c *config) { c.queryText = on }
}

// WithStepSpans chooses whether the steps of an operation get spans of
// their own (default true); the operation's span is always emitted.
func WithStepSpans(on bool) Option {
	return func(c *config) { c.noStepSpans = !on }
}

const instrumentation = "github.com/wtcache/wtcache"

type telemetry struct {
	tracer     trace.Tracer // set when the user gave a provider
	global     bool         // follow otel.GetTracerProvider()
	globalTr   atomic.Pointer[globalTracer]
	steps      bool
	queryText  bool
	base       []attribute.KeyValue
	opCounts   sync.Map // opKey -> *opCount
	nOpCounts  atomic.Int64
	stepDur    metric.Float64Histogram
	relFail    metric.Int64Counter
	corrupt    metric.Int64Counter
	stepOpts   map[string][]metric.RecordOption // per step name, made once
	registered metric.Registration
}

type opKey struct{ table, op, outcome, reason string }

func newTelemetry(cfg *config, cn *connector) *telemetry {
	tp, mp := cfg.tp, cfg.mp
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	t := &telemetry{
		global:    cfg.tp == nil,
		steps:     !cfg.noStepSpans,
		queryText: cfg.queryText,
		base:      []attribute.KeyValue{attrDBSystem.String("postgresql")},
		stepOpts:  map[string][]metric.RecordOption{},
	}
	for _, step := range []string{SpanCacheLookup, SpanDBQuery, SpanDBExec, SpanCacheFill, SpanCacheIntents, SpanDBCommit, SpanCacheRelease, SpanFeedApply} {
		t.stepOpts[step] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrStep.String(step)))}
	}
	if tp != nil {
		t.tracer = tp.Tracer(instrumentation)
	}
	m := mp.Meter(instrumentation)
	ops, _ := m.Int64ObservableCounter("wtcache.operations", metric.WithDescription("database/sql operations through wtcache, by outcome (hit, miss, partial, bypass with its reason, write)"))
	t.stepDur, _ = m.Float64Histogram("wtcache.step.duration", metric.WithUnit("s"), metric.WithDescription("duration of each step: cache lookup, database statement, fill, intents, commit, release"))
	t.relFail, _ = m.Int64Counter("wtcache.release.failures", metric.WithDescription("write intents that could not be released or mirrored and were left to expire"))
	t.corrupt, _ = m.Int64Counter("wtcache.corrupt_entries", metric.WithDescription("cache entries rejected as corrupt, of the wrong type or from another encoding; each was removed"))
	dirty, _ := m.Int64ObservableGauge("wtcache.dirty_tables", metric.WithDescription("tables this handle does not serve from Redis until it has invalidated them (fallback policy)"))
	intents, _ := m.Int64ObservableCounter("wtcache.intents.expired", metric.WithDescription("intents this handle left to expire (same as release failures)"))
	up, _ := m.Int64ObservableGauge("wtcache.cache.available", metric.WithDescription("1 while Redis answers, 0 while the circuit breaker holds it unreachable (lookups go to PostgreSQL)"))
	outages, _ := m.Int64ObservableCounter("wtcache.cache.outages", metric.WithDescription("times Redis was found unreachable and the circuit breaker opened"))
	feedLag, _ := m.Float64ObservableGauge("wtcache.feed.lag", metric.WithUnit("s"), metric.WithDescription("change feed: time from a heartbeat written into PostgreSQL's log until this process's follower read it back (0 when it does not follow)"))
	feedLagBytes, _ := m.Int64ObservableGauge("wtcache.feed.lag_bytes", metric.WithUnit("By"), metric.WithDescription("change feed: WAL the server has sent past what this process's follower applied"))
	feedApplied, _ := m.Int64ObservableCounter("wtcache.feed.invalidations", metric.WithDescription("change feed: committed row changes this process's follower applied to Redis"))
	feedBumps, _ := m.Int64ObservableCounter("wtcache.feed.generation_bumps", metric.WithDescription("change feed: table generations this process's follower moved (TRUNCATE, schema changes, large transactions)"))
	feedTakeovers, _ := m.Int64ObservableCounter("wtcache.feed.takeovers", metric.WithDescription("change feed: times this process became the follower"))
	feedFresh, _ := m.Int64ObservableGauge("wtcache.feed.fresh", metric.WithDescription("change feed: 1 while the follower's claim holds and hits may be served, else 0"))
	nearHits, _ := m.Int64ObservableCounter("wtcache.near.hits", metric.WithDescription("near cache (cache_local): rows served from the process's memory"))
	nearInv, _ := m.Int64ObservableCounter("wtcache.near.invalidations", metric.WithDescription("near cache: keys Redis reported changed on the tracking connection"))
	nearTrips, _ := m.Int64ObservableCounter("wtcache.near.fence_trips", metric.WithDescription("near cache: times the tracking connection was lost, replaced or fell silent and everything was dropped"))
	nearServing, _ := m.Int64ObservableGauge("wtcache.near.serving", metric.WithDescription("near cache: 1 while its fence holds and near hits may be served, else 0"))
	nearDelay, _ := m.Float64ObservableGauge("wtcache.near.invalidation_delay", metric.WithUnit("s"), metric.WithDescription("near cache: round trip of the last heartbeat on the tracking connection, the bound on how late an invalidation arrives"))
	nearBytes, _ := m.Int64ObservableGauge("wtcache.near.bytes", metric.WithUnit("By"), metric.WithDescription("near cache: estimated memory held (bounded by cache_local_size)"))
	t.registered, _ = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if n := cn.nearNow(); n != nil {
			s := n.stats()
			o.ObserveInt64(nearHits, s.Hits)
			o.ObserveInt64(nearInv, s.Invalidations)
			o.ObserveInt64(nearTrips, s.FenceTrips)
			o.ObserveInt64(nearServing, int64(boolInt(s.Serving)))
			o.ObserveFloat64(nearDelay, time.Duration(n.beatRTT.Load()).Seconds())
			o.ObserveInt64(nearBytes, s.Bytes)
		}
		if cn.cfg.feed {
			f := &cn.feed
			leader := f.leader.Load()
			lag, lagBytes := 0.0, int64(0)
			if leader {
				lag, lagBytes = time.Duration(f.lagNs.Load()).Seconds(), f.lagBytes.Load()
			}
			o.ObserveFloat64(feedLag, lag)
			o.ObserveInt64(feedLagBytes, lagBytes)
			o.ObserveInt64(feedApplied, f.applied.Load())
			o.ObserveInt64(feedBumps, f.bumps.Load())
			o.ObserveInt64(feedTakeovers, f.takeovers.Load())
			o.ObserveInt64(feedFresh, int64(boolInt(f.view.Load().fresh(time.Now()))))
		}
		o.ObserveInt64(dirty, int64(cn.dirtyN.Load()))
		o.ObserveInt64(up, int64(1-boolInt(cn.brk.down.Load())))
		o.ObserveInt64(outages, cn.brk.trips.Load())
		o.ObserveInt64(intents, cn.releaseFailures.Load())
		t.opCounts.Range(func(_, v any) bool {
			oc := v.(*opCount)
			o.ObserveInt64(ops, oc.n.Load(), oc.attrs)
			return true
		})
		return nil
	}, dirty, intents, ops, up, outages, feedLag, feedLagBytes, feedApplied, feedBumps, feedTakeovers, feedFresh,
		nearHits, nearInv, nearTrips, nearServing, nearDelay, nearBytes)
	return t
}

// globalTracer caches the tracer of the global provider it came from.
type globalTracer struct {
	tp trace.TracerProvider
	tr trace.Tracer
}

// unsetGlobal is the type of the global provider before a program sets
// one: a delegate that records nothing. Tracing through it would only cost
// allocations, so wtcache skips spans until a provider is set.
var (
	unsetGlobal     = fmt.Sprintf("%T", otel.GetTracerProvider())
	initialProvider = otel.GetTracerProvider()
)

// tracerNow returns the tracer to use, or nil when nothing would record.
func (t *telemetry) tracerNow() trace.Tracer {
	if !t.global {
		return t.tracer
	}
	tp := otel.GetTracerProvider()
	if tp == initialProvider {
		return nil // the global delegate, still unset (it compares equal to itself)
	}
	if g := t.globalTr.Load(); g != nil && g.tp == tp {
		return g.tr
	}
	if fmt.Sprintf("%T", tp) == unsetGlobal {
		return nil
	}
	g := &globalTracer{tp: tp, tr: tp.Tracer(instrumentation)}
	t.globalTr.Store(g)
	return g.tr
}

var (
	clientKind   = trace.WithSpanKind(trace.SpanKindClient)
	internalKind = trace.WithSpanKind(trace.SpanKindInternal)
	noopSpan     = trace.SpanFromContext(context.Background())
)

// opCount counts the operations of one attribute set. Counting is an
// atomic add on the hot path; the metric SDK reads the counts when it
// collects (an observable counter), so an operation costs no allocation.
type opCount struct {
	n     atomic.Int64
	attrs metric.ObserveOption
}

// countOp counts one operation.
func (t *telemetry) countOp(ctx context.Context, table, op, outcome, reason string) {
	t.opCount(table, op, outcome, reason).n.Add(1)
}

// maxOpCounts bounds the attribute sets counted: table names come from
// statement texts, so an application that names many tables would
// otherwise grow the metric without bound. Beyond it, tables count as
// "_other".
const maxOpCounts = 4096

// opCount returns the counter of one attribute set.
func (t *telemetry) opCount(table, op, outcome, reason string) *opCount {
	k := opKey{table, op, outcome, reason}
	if v, ok := t.opCounts.Load(k); ok {
		return v.(*opCount)
	}
	if t.nOpCounts.Load() >= maxOpCounts && table != "" {
		k.table, table = "_other", "_other"
		if v, ok := t.opCounts.Load(k); ok {
			return v.(*opCount)
		}
	}
	t.nOpCounts.Add(1)
	attrs := []attribute.KeyValue{attrOutcome.String(outcome)}
	if table != "" {
		attrs = append(attrs, attrDBCollection.String(table))
	}
	if op != "" {
		attrs = append(attrs, attrDBOperation.String(op))
	}
	if reason != "" {
		attrs = append(attrs, reasonAttr(outcome).String(reason))
	}
	v, _ := t.opCounts.LoadOrStore(k, &opCount{attrs: metric.WithAttributeSet(attribute.NewSet(attrs...))})
	return v.(*opCount)
}

// hitCount is a plan's counter of hits, kept on the plan so that a hit
// does not hash its attribute set.
type hitCount struct {
	t  *telemetry
	oc *opCount
}

func (t *telemetry) recordStep(ctx context.Context, step string, d time.Duration) {
	opts, ok := t.stepOpts[step] // read-only after newTelemetry
	if !ok {
		opts = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrStep.String(step)))}
	}
	t.stepDur.Record(ctx, d.Seconds(), opts...)
}

// stepSpans reports whether a step under ctx gets a span of its own.
func (t *telemetry) stepSpans(ctx context.Context) bool {
	return t.steps && trace.SpanFromContext(ctx).SpanContext().IsSampled() && t.tracerNow() != nil
}

// op is one database/sql operation being traced.
type op struct {
	p       *plan
	t       *telemetry
	span    trace.Span
	table   string
	name    string
	start   time.Time
	counted bool
}

// startOp starts the span of one operation.
func (c *conn) startOp(ctx context.Context, p *plan, method string, o *op) context.Context {
	t := c.c.tel
	*o = op{p: p, t: t, table: p.table, name: p.operation, span: noopSpan}
	if o.name == "" {
		o.name = method
	}
	tr := t.tracerNow()
	if tr == nil {
		return ctx
	}
	spanName := o.name
	if p.table != "" {
		spanName += " " + p.table
	}
	ctx, o.span = tr.Start(ctx, spanName, clientKind)
	if o.span.IsRecording() {
		attrs := append(make([]attribute.KeyValue, 0, 8), t.base...)
		if c.sess.database != "" {
			attrs = append(attrs, attrDBNamespace.String(c.sess.database))
		}
		if p.table != "" {
			attrs = append(attrs, attrDBCollection.String(p.table))
		}
		if p.operation != "" {
			attrs = append(attrs, attrDBOperation.String(p.operation))
		}
		if addr := c.serverAddr(); addr != "" {
			attrs = append(attrs, attrServerAddr.String(addr))
		}
		if t.queryText && p.text != "" {
			attrs = append(attrs, attrDBQueryText.String(p.text))
		}
		o.span.SetAttributes(attrs...)
	}
	return ctx
}

// outcome records how a lookup or statement was served.
func (o *op) outcome(ctx context.Context, outcome, reason string, kv ...attribute.KeyValue) {
	if o.span.IsRecording() {
		o.span.SetAttributes(attrOutcome.String(outcome))
		if reason != "" {
			o.span.SetAttributes(reasonAttr(outcome).String(reason))
		}
		o.span.SetAttributes(kv...)
	}
	if !o.counted {
		o.counted = true
		if (outcome == "hit" || outcome == outcomeNearHit) && reason == "" && o.p != nil {
			slot := &o.p.hits
			if outcome == outcomeNearHit {
				slot = &o.p.nearHits
			}
			hc := slot.Load()
			if hc == nil || hc.t != o.t {
				hc = &hitCount{t: o.t, oc: o.t.opCount(o.table, o.name, outcome, reason)}
				slot.Store(hc)
			}
			hc.oc.n.Add(1)
			return
		}
		o.t.countOp(ctx, o.table, o.name, outcome, reason)
	}
}

// reasonAttr is the attribute that carries the reason of an outcome.
func reasonAttr(outcome string) attribute.Key {
	if outcome == "miss" || outcome == "partial" {
		return attrMissReason
	}
	return attrReason
}

// traced reports whether the operation's span records, so that its steps
// get spans too.
func (o *op) traced() bool { return o.span.IsRecording() && o.t.steps }

// end ends the operation's span, recording err as the conventions say.
func (o *op) end(err error) {
	if err != nil && o.span.IsRecording() {
		o.span.SetAttributes(attrErrorType.String(errorType(err)))
		o.span.RecordError(err)
		o.span.SetStatus(codes.Error, err.Error())
	}
	o.span.End()
}

// errorType is the SQLSTATE of a PostgreSQL error, else a short class.
func errorType(err error) string {
	var pg *pgconn.PgError
	switch {
	case errors.As(err, &pg):
		return pg.Code
	case errors.Is(err, ErrCacheUnavailable):
		return "wtcache.cache_unavailable"
	case errors.Is(err, context.Canceled):
		return "context.canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "context.deadline_exceeded"
	}
	return fmt.Sprintf("%T", err)
}

// step runs a traced step: a child span (unless step spans are off) and a
// duration in the step histogram.
func (c *connector) step(ctx context.Context, name string, fn func(ctx context.Context) error, kv ...attribute.KeyValue) error {
	t := c.tel
	start := time.Now()
	var span trace.Span
	if tr := t.tracerNow(); t.steps && tr != nil && trace.SpanFromContext(ctx).SpanContext().IsSampled() {
		ctx, span = tr.Start(ctx, name, internalKind)
		defer span.End() // also when fn panics
		if len(kv) > 0 && span.IsRecording() {
			span.SetAttributes(kv...)
		}
	}
	err := fn(ctx)
	t.recordStep(ctx, name, time.Since(start))
	if span != nil && err != nil && span.IsRecording() {
		span.SetAttributes(attrErrorType.String(errorType(err)))
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// detach returns a background context that carries ctx's span, for work
// that outlives the caller (fills, releases): its spans stay children of
// the operation's span.
func detach(ctx context.Context) context.Context {
	return trace.ContextWithSpan(context.Background(), trace.SpanFromContext(ctx))
}
