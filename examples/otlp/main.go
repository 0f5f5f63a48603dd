// Command otlp runs a few seconds of bank traffic through wtcache and
// exports the traces over OTLP/HTTP to a collector, Jaeger or Tempo. See
// README.md for running it with Jaeger.
//
// Environment:
//
//	DATABASE_URL                 PostgreSQL (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable)
//	REDIS_URL                    Redis (default: an in-process miniredis)
//	OTEL_EXPORTER_OTLP_ENDPOINT  where to send traces, e.g. http://localhost:4318
//	                             (default: http://localhost:4318)
//	OTEL_SERVICE_NAME            service name of the traces (default wtcache-bank)
//
// It never waits on the collector: if none listens, export errors are logged
// and the program still exits with status 0 after its run.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	_ "github.com/wtcache/wtcache" // registers the "wtcache" driver
)

const (
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	table              = "otlp_accounts"
	accounts           = 100
	initialBalance     = 1000
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long to run traffic")
	workers := flag.Int("workers", 4, "concurrent workers")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("otlp: ")
	if err := run(*duration, *workers); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func run(duration time.Duration, workers int) error {
	ctx := context.Background()

	// 1. The tracer provider, exporting in batches over OTLP/HTTP.
	exp, endpoint, err := newExporter(ctx)
	if err != nil {
		return err
	}
	service := getenv("OTEL_SERVICE_NAME", "wtcache-bank")
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))),
	)
	// Export errors reach the global error handler: log the first, count
	// the rest, never stop.
	var exportErrs atomic.Int64
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		if exportErrs.Add(1) == 1 {
			log.Printf("exporting traces to %s failed (is a collector listening?): %v", endpoint, err)
		}
	}))
	// wtcache uses the global tracer provider unless given one with
	// wtcache.WithTracerProvider: a program that opens it with sql.Open and
	// a DSN, as here, installs its provider globally.
	otel.SetTracerProvider(tp)
	tracer := tp.Tracer("github.com/wtcache/wtcache/examples/otlp")

	// 2. wtcache, opened with a DSN.
	redisURL := os.Getenv("REDIS_URL")
	if redisURL == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return err
		}
		defer mr.Close()
		redisURL = "redis://" + mr.Addr()
	}
	db, err := sql.Open("wtcache", withCacheRedis(getenv("DATABASE_URL", defaultDatabaseURL), redisURL))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxIdleConns(workers)
	if err := setup(ctx, db); err != nil {
		return err
	}

	// 3. Traffic: 90% balance reads, 10% transfers, each transfer under a
	// span of its own so that its statements form one trace.
	fmt.Printf("running %s of traffic (%d workers); traces go to %s as service %q\n", duration, workers, endpoint, service)
	var reads, transfers, failures atomic.Int64
	until := time.Now().Add(duration)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for time.Now().Before(until) {
				var err error
				if rng.IntN(10) != 0 {
					var balance int64
					err = db.QueryRowContext(ctx, `SELECT balance FROM `+table+` WHERE id = $1`, 1+rng.Int64N(accounts)).Scan(&balance)
					reads.Add(1)
				} else {
					from, to := 1+rng.Int64N(accounts), 1+rng.Int64N(accounts)
					if from != to {
						err = transfer(ctx, tracer, db, from, to, 1+rng.Int64N(50))
						transfers.Add(1)
					}
				}
				if err != nil && failures.Add(1) == 1 {
					log.Printf("first error: %v", err)
				}
				time.Sleep(20 * time.Millisecond) // a few hundred traces a second is plenty to look at
			}
		}()
	}
	wg.Wait()
	fmt.Printf("done: %d reads, %d transfers, %d errors\n", reads.Load(), transfers.Load(), failures.Load())

	// 4. Flush what is buffered, bounded: no collector must not mean no exit.
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(sctx); err != nil {
		exportErrs.Add(1)
		log.Printf("flushing traces: %v", err)
	}
	if n := exportErrs.Load(); n > 0 {
		fmt.Printf("traces were NOT all exported (%d export error(s)): start a collector or Jaeger at %s and run again (see README.md)\n", n, endpoint)
	} else {
		fmt.Printf("traces exported to %s: look for service %q\n", endpoint, service)
	}
	return nil
}

// newExporter builds the OTLP/HTTP exporter. The OTEL_EXPORTER_OTLP_*
// variables configure it as the OpenTelemetry specification says; without
// an endpoint it sends to http://localhost:4318 (plain HTTP, as Jaeger and
// the collector listen by default). It does not connect yet, and it gives
// up on a batch after a few seconds.
func newExporter(ctx context.Context) (sdktrace.SpanExporter, string, error) {
	opts := []otlptracehttp.Option{
		otlptracehttp.WithTimeout(2 * time.Second),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{
			Enabled:         true,
			InitialInterval: 200 * time.Millisecond,
			MaxInterval:     time.Second,
			MaxElapsedTime:  2 * time.Second,
		}),
	}
	endpoint := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		endpoint = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if endpoint == "" {
		endpoint = "http://localhost:4318"
		opts = append(opts, otlptracehttp.WithEndpoint("localhost:4318"), otlptracehttp.WithInsecure())
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	return exp, endpoint, err
}

// setup creates the accounts, through wtcache so that the TRUNCATE also
// invalidates what the cache holds from an earlier run.
func setup(ctx context.Context, db *sql.DB) error {
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS ` + table + ` (id bigint PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL)`,
		`TRUNCATE ` + table,
		`INSERT INTO ` + table + ` SELECT i, 'customer ' || i, ` + fmt.Sprint(initialBalance) +
			` FROM generate_series(1, ` + fmt.Sprint(accounts) + `) AS i`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// transfer moves amount between two accounts in one transaction, locking
// the rows in id order; it does nothing when the source has too little.
func transfer(ctx context.Context, tracer trace.Tracer, db *sql.DB, from, to, amount int64) (err error) {
	ctx, span := tracer.Start(ctx, "bank.transfer")
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	balances := map[int64]int64{}
	for _, id := range []int64{min(from, to), max(from, to)} {
		var b int64
		if err := tx.QueryRowContext(ctx, `SELECT balance FROM `+table+` WHERE id = $1 FOR UPDATE`, id).Scan(&b); err != nil {
			return err
		}
		balances[id] = b
	}
	if balances[from] < amount {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET balance = balance - $1 WHERE id = $2`, amount, from); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET balance = balance + $1 WHERE id = $2`, amount, to); err != nil {
		return err
	}
	return tx.Commit()
}

// withCacheRedis adds wtcache's cache_redis parameter to a PostgreSQL DSN
// (URL or keyword/value form), as in examples/quickstart.
func withCacheRedis(pgDSN, redisURL string) string {
	if strings.HasPrefix(pgDSN, "postgres://") || strings.HasPrefix(pgDSN, "postgresql://") {
		base, frag, hasFrag := strings.Cut(pgDSN, "#")
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		out := base + sep + "cache_redis=" + strings.ReplaceAll(url.QueryEscape(redisURL), "+", "%20")
		if hasFrag {
			out += "#" + frag
		}
		return out
	}
	quoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(redisURL)
	return strings.TrimSpace(pgDSN) + " cache_redis='" + quoted + "'"
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
