package wtcache

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/wtcache/wtcache/internal/dsn"
)

// TestSecretsNeverShown puts a known secret in every position a DSN can
// hold one (the Redis URL's password and, without a password, its user;
// the PostgreSQL password in the URL and keyword/value forms) and drives
// the error paths that can run without services: malformed parameters,
// malformed Redis URLs, a Redis that refuses connections (the breaker's
// error, its log records, the server's name in messages), and a
// connection to a database that is not there. No error, log record or
// name may contain the secret.
func TestSecretsNeverShown(t *testing.T) {
	const secret = "Zq7sEcReT"
	refused := closedAddr(t)
	redisURLs := map[string]string{
		"password":           "redis://app:" + secret + "@" + refused + "/0",
		"user, no password":  "redis://" + secret + "@" + refused + "/0",
		"empty password":     "redis://" + secret + ":@" + refused + "/0",
		"percent-encoded":    "redis://app:" + url.PathEscape(secret) + "%2F@" + refused + "/0",
		"cluster URL":        "redis+cluster://:" + secret + "@" + refused + "?addr=" + refused,
		"malformed port":     "redis://app:" + secret + "@127.0.0.1:port/0",
		"malformed, no pass": "redis://" + secret + "@127.0.0.1:port/0",
		// A password holding an unencoded '/', '?' or '#': the URL parses
		// with no password, the tail of the secret elsewhere.
		"a '/' in the password": "redis://:/" + secret + "@" + refused + "/0",
		"a '/' after a port":    "redis://:123/" + secret + "@" + refused + "/0",
		"a '?' in the password": "redis://:?" + secret + "@" + refused + "/0",
		"a '#' in the password": "redis://:1#" + secret + "@" + refused + "/0",
	}
	var outputs []string
	check := func(where, out string) {
		t.Helper()
		outputs = append(outputs, out)
		if strings.Contains(out, secret) {
			t.Errorf("%s shows the secret: %s", where, out)
		}
	}
	for name, ru := range redisURLs {
		t.Run("redis "+name, func(t *testing.T) {
			var logs syncBuffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			for _, dsnText := range []string{
				"host=db user=app cache_redis='" + ru + "' cache_timeout=50ms",
				"postgres://app@db/bank?cache_timeout=50ms&cache_redis=" + url.QueryEscape(ru),
			} {
				c, err := (&wtDriver{opts: []Option{WithLogger(logger)}}).openConnector(dsnText)
				if err != nil {
					check("the open error", err.Error())
					continue
				}
				check("the server's name", c.redisName())
				ctx := context.Background()
				rctx, cancel := c.redisCtx(ctx)
				err = c.redisErr(ctx, c.cfg.redis.Ping(rctx).Err())
				cancel()
				if err == nil {
					t.Fatalf("a refused Redis answered")
				}
				check("the error", err.Error())
				check("the redacted error", c.redact(err.Error()))
				check("the failure error", fmt.Errorf("%w: %s: %v", ErrCacheUnavailable, c.redisName(), errCacheDown).Error())
				waitFor(t, 2*time.Second, "the outage to be logged", func() bool { return strings.Contains(logs.String(), "event=redis_down") })
				_ = c.Close()
			}
			check("the log", logs.String())
		})
	}
	// The PostgreSQL password, with a malformed cache_ parameter or an
	// unreachable database.
	for _, dsnText := range []string{
		"postgres://app:" + secret + "@127.0.0.1:1/bank?cache_ttl=bogus&" + fakeRedisParam,
		"host=127.0.0.1 port=1 user=app password=" + secret + " cache_ttl=bogus " + fakeRedisParam,
		"postgres://app:" + secret + "@127.0.0.1:1/bank?cache_nosuch=1&" + fakeRedisParam,
		"host=127.0.0.1 port=1 password='" + secret + "' CACHE_TTL=1s " + fakeRedisParam,
		"postgres://app:" + secret + "@127.0.0.1:1/bank?connect_timeout=1&" + fakeRedisParam,
		"host=127.0.0.1 port=1 user=app password=" + secret + " connect_timeout=1 " + fakeRedisParam,
		// pgx parses its DSN at Connect and quotes it in its error; its
		// own redaction misses spaces around '=' and escapes.
		"host=127.0.0.1 user=app password = 'pw" + secret + "' sslmode=bogus " + fakeRedisParam,
		"host=127.0.0.1 user=app password =" + secret + " sslmode=bogus " + fakeRedisParam,
		"host=127.0.0.1 user=app password='ab\\' " + secret + "' sslmode=bogus " + fakeRedisParam,
		"host=127.0.0.1 user=app password=abc\\ " + secret + " sslmode=bogus " + fakeRedisParam,
		"postgres://app:pw" + secret + "@127.0.0.1/test?sslmode=bogus&" + fakeRedisParam,
		// Passwords in the query or as sslpassword, with a port pgx cannot
		// read (its own redaction then misses them).
		"postgres://postgres@127.0.0.1:notaport/test?application_name=me@host&password=" + secret,
		"postgres://postgres@127.0.0.1:notaport/test?password=Sec@" + secret,
		"host=127.0.0.1 user=postgres dbname=test sslpassword = " + secret + " port=notaport " + fakeRedisParam,
		"host=127.0.0.1 user=postgres dbname=test sslpassword=Top\\ " + secret + " port=notaport " + fakeRedisParam,
		// A cache_key cut short at an unencoded '&', '#' or space.
		"postgres://app@127.0.0.1/test?sslmode=disable&cache_key=0123456789abcdef&" + secret + "&" + fakeRedisParam,
		"postgres://app@127.0.0.1:1/test?" + fakeRedisParam + "&cache_key=0123456789abcdef#" + secret,
		"host=127.0.0.1 cache_key=0123456789abcdef " + secret + " " + fakeRedisParam,
	} {
		db, err := sql.Open(DriverName, dsnText)
		if err != nil {
			check("sql.Open's error", err.Error())
			continue
		}
		err = db.PingContext(context.Background())
		if err == nil {
			t.Fatalf("a database on port 1 answered")
		}
		check("Ping's error", err.Error())
		_ = db.Close()
	}
	if len(outputs) < 20 {
		t.Fatalf("only %d outputs were checked", len(outputs))
	}
}

// TestSecretsNotInTelemetry: with a known secret as the PostgreSQL
// password and as the Redis password (Redis refusing it, and Redis not
// there at all), reads, writes under both policies and transactions run
// with a recording tracer, a metric reader and a logger; no span name,
// attribute, status or event, no metric attribute, no log record and no
// error carries the secret.
func TestSecretsNotInTelemetry(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	const secret = "Zq7sEcReT9"
	u, _ := url.Parse(e.dbURL)
	u.User = url.UserPassword(u.User.Username(), secret) // trust auth: accepted, unused
	redisHost := e.rdb.Options().Addr
	for name, ru := range map[string]string{
		"wrong password": "redis://nosuchuser:" + secret + "@" + redisHost + "/15",
		"refused":        "redis://app:" + secret + "@" + closedAddr(t) + "/0",
	} {
		for _, policy := range []string{"fail", "fallback"} {
			t.Run(name+" "+policy, func(t *testing.T) {
				r := newRig()
				var logs syncBuffer
				opts := append(r.opts, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
				dsn := u.String() + "&cache_timeout=100ms&cache_failure=" + policy + "&cache_key=" + secret + "-entry-key-" + secret + "&cache_redis=" + url.QueryEscape(ru)
				c, err := (&wtDriver{opts: opts}).openConnector(dsn)
				if err != nil {
					t.Fatal(err)
				}
				db := sql.OpenDB(c)
				defer db.Close()
				var errs []string
				note := func(err error) {
					if err != nil {
						errs = append(errs, err.Error())
					}
				}
				ctx := context.Background()
				for i := 0; i < 3; i++ {
					var b int64
					note(db.QueryRowContext(ctx, "SELECT balance FROM wt_accounts WHERE id = $1", 1).Scan(&b))
					_, err := db.ExecContext(ctx, "UPDATE wt_accounts SET balance = balance WHERE id = $1", 1)
					note(err)
					if tx, err := db.BeginTx(ctx, nil); err == nil {
						_, err = tx.ExecContext(ctx, "UPDATE wt_accounts SET balance = balance WHERE id = 2")
						note(err)
						note(tx.Commit())
					}
					note(Invalidate(ctx, db, "wt_accounts", 1))
					_, err = DBStats(ctx, db)
					note(err)
				}
				if len(errs) == 0 && policy == "fail" {
					t.Fatal("no error at all: the cache was not refused")
				}
				var all []string
				all = append(all, errs...)
				all = append(all, logs.String())
				for _, s := range r.rec.Ended() {
					all = append(all, s.Name(), s.Status().Description)
					for _, kv := range s.Attributes() {
						all = append(all, kv.Value.Emit())
					}
					for _, ev := range s.Events() {
						all = append(all, ev.Name)
						for _, kv := range ev.Attributes {
							all = append(all, kv.Value.Emit())
						}
					}
				}
				var rm metricdata.ResourceMetrics
				if err := r.reader.Collect(ctx, &rm); err != nil {
					t.Fatal(err)
				}
				all = append(all, fmt.Sprintf("%+v", rm))
				if len(r.rec.Ended()) == 0 {
					t.Fatal("no span recorded")
				}
				for _, s := range all {
					if strings.Contains(s, secret) {
						t.Fatalf("the secret shows in: %s", s)
					}
				}
			})
		}
	}
}

// TestSecretsNeverShownGenerated: secrets made of the characters that cut
// or escape DSN and URL values (space, quotes, backslash, '/', '?', '#',
// '&', '@', '%', '=', ':') around a marker, written into every secret
// position (the PostgreSQL password in both DSN forms, correctly escaped or
// not; the Redis password; cache_key), then opened and connected: the
// marker never shows in an error or a log line.
func TestSecretsNeverShownGenerated(t *testing.T) {
	const marker = "Mk9sEcReT"
	specials := []string{" ", "'", `\`, "/", "?", "#", "&", "@", "%", "=", ":", "x"}
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	pick := func() string {
		var b strings.Builder
		for range rng.IntN(3) {
			b.WriteString(specials[rng.IntN(len(specials))])
		}
		return b.String()
	}
	kvQuote := func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
	}
	refused := closedAddr(t)
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	checked := 0
	for i := 0; i < 300; i++ {
		secret := pick() + marker + pick()
		var d string
		switch rng.IntN(9) {
		case 7: // URL, the password in the query, a port pgx cannot read
			v := secret
			if rng.IntN(2) == 0 {
				v = url.QueryEscape(v)
			}
			d = "postgres://app@127.0.0.1:" + []string{"1", "notaport"}[rng.IntN(2)] + "/test?sslmode=disable&password=" + v + "&" + fakeRedisParam
		case 8: // keyword/value sslpassword, quoted or not, spaces around '='
			v := secret
			if rng.IntN(2) == 0 {
				v = kvQuote(v)
			}
			d = "host=127.0.0.1 port=notaport user=app sslpassword" + []string{"=", " = "}[rng.IntN(2)] + v + " " + fakeRedisParam
		case 0: // keyword/value, quoted as libpq wants
			d = "host=127.0.0.1 port=1 user=app password=" + kvQuote(secret) + " sslmode=" + []string{"disable", "bogus"}[rng.IntN(2)] + " " + fakeRedisParam
		case 1: // keyword/value, written as is
			d = "host=127.0.0.1 port=1 user=app password=" + secret + " sslmode=bogus " + fakeRedisParam
		case 2: // URL, percent-encoded
			d = "postgres://app:" + url.PathEscape(secret) + "@127.0.0.1:1/test?sslmode=bogus&" + fakeRedisParam
		case 3: // URL, written as is
			d = "postgres://app:" + secret + "@127.0.0.1:1/test?sslmode=bogus&" + fakeRedisParam
		case 4: // Redis password, written as is or encoded
			pw := secret
			if rng.IntN(2) == 0 {
				pw = url.PathEscape(secret)
			}
			d = "host=127.0.0.1 port=1 cache_timeout=20ms cache_redis=" + kvQuote("redis://app:"+pw+"@"+refused+"/0")
		case 5: // cache_key, keyword/value, as is or quoted
			v := secret + "0123456789abcdef"
			if rng.IntN(2) == 0 {
				v = kvQuote(v)
			}
			d = "host=127.0.0.1 port=1 cache_key=" + v + " " + fakeRedisParam
		case 6: // cache_key, URL, as is or encoded
			v := secret + "0123456789abcdef"
			if rng.IntN(2) == 0 {
				v = url.QueryEscape(v)
			}
			d = "postgres://app@127.0.0.1:1/test?sslmode=bogus&cache_key=" + v + "&" + fakeRedisParam
		}
		show := func(where, out string) {
			t.Helper()
			checked++
			if strings.Contains(out, marker) {
				t.Errorf("%s shows the secret %q of the DSN %q: %s", where, secret, d, out)
			}
		}
		c, err := (&wtDriver{opts: []Option{WithLogger(logger)}}).openConnector(d)
		if err != nil {
			show("the open error", err.Error())
			continue
		}
		show("the Redis server's name", c.redisName())
		if !loopbackOnly(d) {
			// A password's unencoded character made pgx read a name as
			// the host: connecting would send a DNS query off this machine.
			_ = c.Close()
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if conn, err := c.Connect(ctx); err != nil {
			show("the connect error", err.Error())
		} else {
			_ = conn.Close()
		}
		cancel()
		_ = c.Close()
	}
	show := logs.String()
	if strings.Contains(show, marker) {
		t.Errorf("the log shows a secret:\n%s", show)
	}
	if checked < 300 {
		t.Fatalf("only %d outputs checked", checked)
	}
}

// loopbackOnly reports whether connecting with the PostgreSQL part of d
// stays on this machine: pgx cannot parse it (it fails before dialing), or
// every host it would dial is an IP address or a socket directory.
func loopbackOnly(d string) bool {
	inner, _, err := dsn.Split(d)
	if err != nil {
		return true
	}
	cfg, err := pgconn.ParseConfig(inner)
	if err != nil {
		return true
	}
	hosts := []string{cfg.Host}
	for _, f := range cfg.Fallbacks {
		hosts = append(hosts, f.Host)
	}
	for _, h := range hosts {
		if net.ParseIP(h) == nil && !strings.HasPrefix(h, "/") {
			return false
		}
	}
	return true
}
