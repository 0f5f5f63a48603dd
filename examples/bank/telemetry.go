package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// OpenTelemetry, wired up in memory. wtcache is given a TracerProvider and a
// MeterProvider (wtcache.WithTracerProvider, wtcache.WithMeterProvider);
// the program uses what they record in three ways:
//
//   - latencies: every read makes a span named "SELECT <table>" with the
//     attribute wtcache.outcome (hit, miss or bypass); a span processor
//     files each read's duration under its outcome, so the program learns
//     which reads were served by Redis without guessing;
//   - a span tree: one transfer is sampled and kept in an in-memory
//     exporter, then printed;
//   - metrics: a manual reader collects wtcache's counters and histograms.
//
// A real program would export to a collector instead (see examples/otlp).

const transferSpanName = "bank.transfer"

type telemetry struct {
	tp      *sdktrace.TracerProvider
	mp      *sdkmetric.MeterProvider
	metrics *sdkmetric.ManualReader
	spans   *tracetest.InMemoryExporter
	sampler *oneTraceSampler
	lat     *latencyProcessor
	tracer  trace.Tracer
}

func newTelemetry(table string) *telemetry {
	t := &telemetry{
		metrics: sdkmetric.NewManualReader(),
		spans:   tracetest.NewInMemoryExporter(),
		sampler: &oneTraceSampler{},
		lat:     &latencyProcessor{readSpan: "SELECT " + table},
	}
	t.tp = sdktrace.NewTracerProvider(
		sdktrace.WithSampler(t.sampler),
		sdktrace.WithSpanProcessor(t.lat),
		sdktrace.WithSyncer(t.spans), // sees sampled spans only
	)
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(t.metrics))
	t.tracer = t.tp.Tracer("github.com/wtcache/wtcache/examples/bank")
	return t
}

func (t *telemetry) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = t.tp.Shutdown(ctx)
	_ = t.mp.Shutdown(ctx)
}

// oneTraceSampler records every span (so that the latency processor sees
// them) but samples, that is keeps for the exporter, only the trace of the
// next root span named by sampleNext.
type oneTraceSampler struct {
	next atomic.Pointer[string]
}

func (s *oneTraceSampler) sampleNext(name string) { s.next.Store(&name) }

func (s *oneTraceSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	parent := trace.SpanContextFromContext(p.ParentContext)
	decision := sdktrace.RecordOnly
	if parent.IsSampled() {
		decision = sdktrace.RecordAndSample
	} else if want := s.next.Load(); want != nil && !parent.IsValid() && *want == p.Name &&
		s.next.CompareAndSwap(want, nil) {
		decision = sdktrace.RecordAndSample
	}
	return sdktrace.SamplingResult{Decision: decision, Tracestate: parent.TraceState()}
}

func (s *oneTraceSampler) Description() string { return "oneTraceSampler" }

// latencyProcessor files the duration of every read (a root span named
// readSpan) under its wtcache.outcome, and of every transfer (the
// program's own bank.transfer span), while a phase is being measured.
type latencyProcessor struct {
	readSpan string
	current  atomic.Pointer[latencies]
}

func (p *latencyProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (p *latencyProcessor) Shutdown(context.Context) error                  { return nil }
func (p *latencyProcessor) ForceFlush(context.Context) error                { return nil }

func (p *latencyProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	l := p.current.Load()
	if l == nil {
		return
	}
	d := s.EndTime().Sub(s.StartTime())
	switch {
	case s.Name() == transferSpanName:
		l.add("transfer", d)
	case s.Name() == p.readSpan && !s.Parent().IsValid():
		outcome := "unknown"
		for _, kv := range s.Attributes() {
			if kv.Key == "wtcache.outcome" {
				outcome = kv.Value.Emit()
			}
		}
		l.add(outcome+" read", d)
	}
}

// measure starts filing durations into a fresh set, and returns it.
func (p *latencyProcessor) measure() *latencies {
	l := &latencies{byPath: map[string][]time.Duration{}}
	p.current.Store(l)
	return l
}

func (p *latencyProcessor) stop() { p.current.Store(nil) }

// latencies holds the durations of one phase, by path.
type latencies struct {
	mu     sync.Mutex
	byPath map[string][]time.Duration
}

func (l *latencies) add(path string, d time.Duration) {
	l.mu.Lock()
	l.byPath[path] = append(l.byPath[path], d)
	l.mu.Unlock()
}

func (l *latencies) count(path string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byPath[path])
}

// percentiles returns the count and the p50, p90 and p99 of a path.
func (l *latencies) percentiles(path string) (n int, p50, p90, p99 time.Duration) {
	l.mu.Lock()
	ds := slices.Clone(l.byPath[path])
	l.mu.Unlock()
	if len(ds) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[int(q*float64(len(ds)-1)+0.5)] }
	return len(ds), at(0.50), at(0.90), at(0.99)
}

// printSpanTree prints the sampled spans as a tree: name, start offset
// from the root, duration and the attributes a reader cares about.
func printSpanTree(w io.Writer, spans tracetest.SpanStubs) {
	if len(spans) == 0 {
		fmt.Fprintln(w, "  (no span recorded: was wtcache given the TracerProvider?)")
		return
	}
	children := map[trace.SpanID][]tracetest.SpanStub{}
	ids := map[trace.SpanID]bool{}
	for _, s := range spans {
		ids[s.SpanContext.SpanID()] = true
	}
	var roots []tracetest.SpanStub
	for _, s := range spans {
		if p := s.Parent.SpanID(); s.Parent.IsValid() && ids[p] {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(ss []tracetest.SpanStub) {
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].StartTime.Before(ss[j].StartTime) })
	}
	byStart(roots)
	var walk func(s tracetest.SpanStub, t0 time.Time, prefix, branch string)
	walk = func(s tracetest.SpanStub, t0 time.Time, prefix, branch string) {
		label := prefix + branch + s.Name
		fmt.Fprintf(w, "  %-40s +%-8s %8s  %s\n", label, ms(s.StartTime.Sub(t0)), ms(s.EndTime.Sub(s.StartTime)), spanAttrs(s))
		kids := children[s.SpanContext.SpanID()]
		byStart(kids)
		next := prefix
		switch branch {
		case "├─ ":
			next += "│  "
		case "└─ ":
			next += "   "
		}
		for i, k := range kids {
			b := "├─ "
			if i == len(kids)-1 {
				b = "└─ "
			}
			walk(k, t0, next, b)
		}
	}
	for _, r := range roots {
		walk(r, r.StartTime, "", "")
	}
}

// spanAttrs renders the attributes worth showing in the tree.
func spanAttrs(s tracetest.SpanStub) string {
	show := []attribute.Key{"wtcache.outcome", "wtcache.keys", "wtcache.step", "bank.from", "bank.to", "bank.amount"}
	var parts []string
	for _, k := range show {
		for _, kv := range s.Attributes {
			if kv.Key == k {
				parts = append(parts, strings.TrimPrefix(string(k), "wtcache.")+"="+kv.Value.Emit())
			}
		}
	}
	if s.Status.Code.String() == "Error" {
		parts = append(parts, "ERROR "+s.Status.Description)
	}
	if s.SpanKind == trace.SpanKindClient {
		parts = append([]string{"[client]"}, parts...)
	}
	return strings.Join(parts, " ")
}

// printMetrics prints what the manual reader collected from wtcache: every
// counter and gauge data point, and count and mean of every histogram.
func printMetrics(w io.Writer, reader *sdkmetric.ManualReader) error {
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		return err
	}
	found := false
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			found = true
			var lines []string
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					lines = append(lines, fmt.Sprintf("%-44s %8d", attrs(dp.Attributes), dp.Value))
				}
			case metricdata.Sum[float64]:
				for _, dp := range d.DataPoints {
					lines = append(lines, fmt.Sprintf("%-44s %8.0f", attrs(dp.Attributes), dp.Value))
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					lines = append(lines, fmt.Sprintf("%-44s %8d", attrs(dp.Attributes), dp.Value))
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					mean := 0.0
					if dp.Count > 0 {
						mean = dp.Sum / float64(dp.Count)
					}
					lines = append(lines, fmt.Sprintf("%-44s %8d  mean %s", attrs(dp.Attributes), dp.Count,
						ms(time.Duration(mean*float64(time.Second)))))
				}
			default:
				lines = append(lines, fmt.Sprintf("(%T)", m.Data))
			}
			sort.Strings(lines)
			if len(lines) == 0 {
				lines = []string{"(no data point)"}
			}
			fmt.Fprintf(w, "  %s\n", m.Name)
			for _, l := range lines {
				fmt.Fprintf(w, "      %s\n", l)
			}
		}
	}
	if !found {
		fmt.Fprintln(w, "  (no metric recorded: was wtcache given the MeterProvider?)")
	}
	return nil
}

// attrs renders a metric's attribute set compactly: its values only, in
// key order (db.collection.name, db.operation.name, wtcache.outcome...).
func attrs(set attribute.Set) string {
	var vals []string
	for _, kv := range set.ToSlice() {
		vals = append(vals, kv.Value.Emit())
	}
	if len(vals) == 0 {
		return "(all)"
	}
	return strings.Join(vals, " ")
}

// ms formats a duration in milliseconds, which suits everything here.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
