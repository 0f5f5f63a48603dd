package wtcache

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

type telemetryRig struct {
	rec    *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	opts   []Option
}

func newRig() *telemetryRig {
	rec := tracetest.NewSpanRecorder()
	reader := sdkmetric.NewManualReader()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	return &telemetryRig{rec: rec, reader: reader, opts: []Option{WithTracerProvider(tp), WithMeterProvider(mp)}}
}

// tree renders the spans under the root named rootName, children indented,
// in start order: "SELECT wt_accounts[wtcache.outcome=hit]\n  wtcache.cache.lookup\n".
func (r *telemetryRig) tree(t *testing.T, rootName string, keys ...attribute.Key) string {
	t.Helper()
	spans := r.rec.Ended()
	var root sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == rootName && !s.Parent().IsValid() {
			root = s
		}
	}
	if root == nil {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("no root span %q among %v", rootName, names)
	}
	var b strings.Builder
	var walk func(s sdktrace.ReadOnlySpan, depth int)
	walk = func(s sdktrace.ReadOnlySpan, depth int) {
		b.WriteString(strings.Repeat("  ", depth) + s.Name())
		var attrs []string
		for _, kv := range s.Attributes() {
			if slices.Contains(keys, kv.Key) {
				attrs = append(attrs, string(kv.Key)+"="+kv.Value.Emit())
			}
		}
		if len(attrs) > 0 {
			b.WriteString("[" + strings.Join(attrs, ",") + "]")
		}
		b.WriteString("\n")
		var kids []sdktrace.ReadOnlySpan
		for _, c := range spans {
			if c.Parent().SpanID() == s.SpanContext().SpanID() && c.Parent().TraceID() == s.SpanContext().TraceID() {
				kids = append(kids, c)
			}
		}
		slices.SortFunc(kids, func(x, y sdktrace.ReadOnlySpan) int { return x.StartTime().Compare(y.StartTime()) })
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	walk(root, 0)
	return b.String()
}

func (r *telemetryRig) reset() { r.rec.Reset() }

func (r *telemetryRig) counter(t *testing.T, name string, match map[string]string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
		points:
			for _, dp := range sum.DataPoints {
				for k, v := range match {
					got, ok := dp.Attributes.Value(attribute.Key(k))
					if !ok || got.Emit() != v {
						continue points
					}
				}
				total += dp.Value
			}
		}
	}
	return total
}

func TestSpansOfHitMissWriteTransactionRollback(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	rig := newRig()
	db, c := e.openWith(t, "", rig.opts)
	ctx := context.Background()
	keys := []attribute.Key{attrOutcome, attrDBCollection, attrDBOperation, attrDBSystem, attrKeys}

	balance(t, db, 1)
	c.settle()
	if got, want := rig.tree(t, "SELECT wt_accounts", keys...),
		"SELECT wt_accounts[db.system.name=postgresql,db.collection.name=wt_accounts,db.operation.name=SELECT,wtcache.outcome=miss,wtcache.keys=1]\n"+
			"  wtcache.cache.lookup[wtcache.keys=1]\n"+
			"  wtcache.db.query[wtcache.keys=1]\n"+
			"  wtcache.cache.fill[wtcache.keys=1]\n"; got != want {
		t.Errorf("miss span tree:\n%s\nwant:\n%s", got, want)
	}
	rig.reset()
	balance(t, db, 1)
	if got, want := rig.tree(t, "SELECT wt_accounts", attrOutcome, attrHits),
		"SELECT wt_accounts[wtcache.outcome=hit,wtcache.hits=1]\n"+
			"  wtcache.cache.lookup\n"; got != want {
		t.Errorf("hit span tree:\n%s\nwant:\n%s", got, want)
	}
	root := rig.rec.Ended()[len(rig.rec.Ended())-1]
	if root.SpanKind() != trace.SpanKindClient {
		t.Errorf("operation span kind %v, want client", root.SpanKind())
	}
	for _, kv := range root.Attributes() {
		if kv.Key == attrDBQueryText {
			t.Error("db.query.text recorded although not enabled")
		}
	}

	rig.reset()
	mustExec(t, db, "UPDATE wt_accounts SET balance = 1 WHERE id = $1", 1)
	c.settle()
	if got, want := rig.tree(t, "UPDATE wt_accounts", attrOutcome, attrKeys),
		"UPDATE wt_accounts[wtcache.outcome=write]\n"+
			"  wtcache.cache.intents[wtcache.keys=1]\n"+
			"  wtcache.db.exec\n"+
			"  wtcache.cache.release[wtcache.keys=1]\n"; got != want {
		t.Errorf("autocommit write span tree:\n%s\nwant:\n%s", got, want)
	}

	rig.reset()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx.ExecContext(ctx, "UPDATE wt_accounts SET balance = balance - 1 WHERE id = 2")
	tx.ExecContext(ctx, "UPDATE wt_accounts SET balance = balance + 1 WHERE id = 3")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if got, want := rig.tree(t, "COMMIT", attrOutcome, attrKeys),
		"COMMIT[wtcache.outcome=write]\n"+
			"  wtcache.cache.intents[wtcache.keys=2]\n"+
			"  wtcache.db.commit\n"+
			"  wtcache.cache.release[wtcache.keys=2]\n"; got != want {
		t.Errorf("commit span tree:\n%s\nwant:\n%s", got, want)
	}

	rig.reset()
	tx, _ = db.BeginTx(ctx, nil)
	tx.ExecContext(ctx, "UPDATE wt_accounts SET balance = 0 WHERE id = 4")
	tx.Rollback()
	if got, want := rig.tree(t, "ROLLBACK", attrOutcome), "ROLLBACK[wtcache.outcome=bypass]\n"; got != want {
		t.Errorf("rollback span tree:\n%s\nwant:\n%s", got, want)
	}
	if n := rig.counter(t, "wtcache.operations", map[string]string{"wtcache.outcome": "hit", "db.collection.name": "wt_accounts"}); n != 1 {
		t.Errorf("wtcache.operations{hit} = %d, want 1", n)
	}
	if n := rig.counter(t, "wtcache.operations", map[string]string{"wtcache.outcome": "miss"}); n != 1 {
		t.Errorf("wtcache.operations{miss} = %d, want 1", n)
	}
}

func TestSpansOfRedisFailureUnderEachPolicy(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	for _, policy := range []string{"fail", "fallback"} {
		t.Run(policy, func(t *testing.T) {
			rig := newRig()
			db, _, px := e.openThroughProxyWith(t, rig.opts, "cache_failure="+policy)
			balance(t, db, 1) // load the schema
			px.Down()
			rig.reset()
			_, err := db.ExecContext(context.Background(), "UPDATE wt_accounts SET balance = 3 WHERE id = $1", 5)
			if policy == "fail" != errors.Is(err, ErrCacheUnavailable) {
				t.Fatalf("write under %s with Redis down: %v", policy, err)
			}
			decision := map[string]string{"fail": "refused", "fallback": "fallback"}[policy]
			tree := rig.tree(t, "UPDATE wt_accounts", attrPolicy, attrDecision, attrErrorType)
			if !strings.HasPrefix(tree, "UPDATE wt_accounts[") || !strings.Contains(tree, "wtcache.policy="+policy) ||
				!strings.Contains(tree, "wtcache.policy.decision="+decision) || !strings.Contains(tree, "  wtcache.cache.intents[error.type=") {
				t.Errorf("span tree under %s:\n%s", policy, tree)
			}
			if policy == "fail" && !strings.Contains(strings.SplitN(tree, "\n", 2)[0], "error.type=wtcache.cache_unavailable") {
				t.Errorf("refused write's span lacks error.type: %s", tree)
			}
			if policy == "fallback" && !strings.Contains(tree, "  wtcache.db.exec") {
				t.Errorf("fallback write did not reach the database:\n%s", tree)
			}
			px.Up()
		})
	}
}
