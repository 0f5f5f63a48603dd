package wtcache

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
	"github.com/alicebob/miniredis/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/wtcache/wtcache/internal/dsn"
)

// The password that every malformed DSN below holds somewhere, and that no
// error may contain.
const (
	redisSecret = "s3cretpw"
	pgSecret    = "pgs3cretpw"
)

// TestOpenErrors checks what sql.Open itself reports (wtcache implements
// DriverContext, so sql.Open parses the DSN): the sentinel, the parameter
// named, and never a password.
func TestOpenErrors(t *testing.T) {
	legacy := "cache_driver=" + legacyFakeName + " "
	tests := []struct {
		name    string
		dsn     string
		wantErr error
		wantIn  []string
	}{
		{name: "missing cache_redis, keyword/value", dsn: legacy + "host=h", wantErr: ErrMissingRedis},
		{name: "missing cache_redis, URL, default driver", dsn: "postgres://app:" + pgSecret + "@db/bank?sslmode=disable", wantErr: ErrMissingRedis},
		{name: "missing cache_redis, only the inner DSN", dsn: "host=h user=app password=" + pgSecret, wantErr: ErrMissingRedis},

		{name: "unknown parameter", dsn: legacy + fakeRedisParam + " cache_tll=5s", wantErr: ErrUnknownParameter, wantIn: []string{"cache_tll"}},
		{name: "unknown parameter, URL", dsn: "postgres://db/bank?cache_tll=5s&" + fakeRedisParam, wantErr: ErrUnknownParameter, wantIn: []string{"cache_tll"}},
		{name: "unknown parameter reported before a missing cache_redis", dsn: legacy + "cache_tll=5s", wantErr: ErrUnknownParameter, wantIn: []string{"cache_tll"}},

		{name: "bad Redis scheme", dsn: legacy + "cache_redis=http://:" + redisSecret + "@cache:6379/0", wantErr: ErrInvalidParameter, wantIn: []string{"cache_redis"}},
		{name: "bad Redis db number", dsn: legacy + "cache_redis=redis://:" + redisSecret + "@cache:6379/abc", wantErr: ErrInvalidParameter, wantIn: []string{"cache_redis"}},
		{name: "bad Redis path", dsn: legacy + "cache_redis=redis://:" + redisSecret + "@cache:6379/1/2", wantErr: ErrInvalidParameter, wantIn: []string{"cache_redis"}},
		{name: "unparseable Redis URL (port)", dsn: legacy + "cache_redis=redis://:" + redisSecret + "@cache:port/0", wantErr: ErrInvalidParameter, wantIn: []string{"cache_redis"}},
		{name: "unparseable Redis URL (escape)", dsn: legacy + "cache_redis=redis://:" + redisSecret + "%zz@cache/0", wantErr: ErrInvalidParameter, wantIn: []string{"cache_redis"}},
		{name: "Redis option echoing the password", dsn: legacy + "cache_redis=redis://:" + redisSecret + "@cache/0?dial_timeout=" + redisSecret, wantErr: ErrInvalidParameter, wantIn: []string{"cache_redis", "dial_timeout"}},
		{name: "unknown Redis option", dsn: legacy + "cache_redis=redis://:" + redisSecret + "@cache/0?bogus=1", wantErr: ErrInvalidParameter, wantIn: []string{"cache_redis", "unexpected option"}},
		{name: "cluster addr echoing the password", dsn: legacy + "cache_redis=redis+cluster://:" + redisSecret + "@n1:7000?addr=" + redisSecret, wantErr: ErrInvalidParameter, wantIn: []string{"cache_redis"}},
		{name: "malformed percent-encoding, URL form", dsn: "postgres://db/bank?cache_redis=redis://:" + redisSecret + "%zz@cache/0", wantErr: ErrInvalidParameter, wantIn: []string{"cache_redis"}},
		{name: "empty cache_redis", dsn: legacy + "cache_redis=", wantErr: ErrInvalidParameter, wantIn: []string{"cache_redis"}},
		{name: "empty cache_driver", dsn: "cache_driver='' " + fakeRedisParam, wantErr: ErrInvalidParameter, wantIn: []string{"cache_driver"}},
		{name: "duplicate cache_redis", dsn: legacy + fakeRedisParam + " " + fakeRedisParam, wantErr: ErrInvalidParameter, wantIn: []string{"cache_redis"}},

		{name: "unknown cache_driver", dsn: "cache_driver=nosuchdriver " + fakeRedisParam, wantErr: ErrUnknownDriver, wantIn: []string{"nosuchdriver"}},
		{name: "cache_driver=wtcache", dsn: "cache_driver=wtcache " + fakeRedisParam, wantErr: ErrUnknownDriver, wantIn: []string{"wtcache"}},

		// A pgx DSN with a password and a bad cache_ parameter.
		{name: "pgx URL with password, unknown parameter", dsn: "postgres://app:" + pgSecret + "@db:5432/bank?sslmode=disable&cache_tll=5s&" + fakeRedisParam, wantErr: ErrUnknownParameter},
		{name: "pgx URL with password, bad Redis URL", dsn: "postgres://app:" + pgSecret + "@db/bank?cache_redis=" + url.QueryEscape("redis://:"+redisSecret+"@cache/x"), wantErr: ErrInvalidParameter},
		{name: "pgx URL with password, duplicate parameter", dsn: "postgres://app:" + pgSecret + "@db/bank?" + fakeRedisParam + "&" + fakeRedisParam, wantErr: ErrInvalidParameter},
		{name: "pgx keyword/value with password, unknown parameter", dsn: "host=db user=app password=" + pgSecret + " cache_tll=5s " + fakeRedisParam, wantErr: ErrUnknownParameter},
		{name: "pgx keyword/value with quoted password, bad Redis URL", dsn: "host=db password='" + pgSecret + " x' cache_redis='redis://:" + redisSecret + "@cache:6379/x'", wantErr: ErrInvalidParameter},
		{name: "pgx keyword/value with password, unterminated cache value", dsn: "host=db password=" + pgSecret + " cache_redis='redis://:" + redisSecret + "@c/0", wantErr: ErrInvalidParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := sql.Open(DriverName, tc.dsn)
			if err == nil {
				_ = db.Close()
				t.Fatalf("sql.Open(%q) succeeded; want %v", tc.dsn, tc.wantErr)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %q is not %v", err, tc.wantErr)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "wtcache: ") {
				t.Errorf("error %q does not start with \"wtcache: \"", msg)
			}
			for _, s := range tc.wantIn {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not name %q", msg, s)
				}
			}
			for _, secret := range []string{redisSecret, pgSecret} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains the password %q", msg, secret)
				}
			}
		})
	}
}

// TestInnerDSNErrorHasNoPassword: a DSN that the inner driver (pgx)
// rejects gives pgx's own error, unchanged, and that error holds no
// password either. pgx parses its DSN when it connects, before any network
// traffic, so Ping reports it.
func TestInnerDSNErrorHasNoPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://app:" + pgSecret + "@127.0.0.1:port/bank?" + fakeRedisParam,
		"postgres://app:" + pgSecret + "@127.0.0.1:1/bank?sslmode=bogus&" + fakeRedisParam,
		"host=127.0.0.1 port=1 user=app password=" + pgSecret + " sslmode=bogus " + fakeRedisParam,
	} {
		t.Run(dsn, func(t *testing.T) {
			db, err := sql.Open(DriverName, dsn)
			if err != nil {
				t.Fatalf("sql.Open: %v", err)
			}
			defer db.Close()
			err = db.PingContext(context.Background())
			if err == nil {
				t.Fatal("Ping succeeded")
			}
			if !strings.Contains(err.Error(), "cannot parse") {
				t.Errorf("error %q is not pgx's DSN error", err)
			}
			if strings.Contains(err.Error(), pgSecret) {
				t.Errorf("error %q contains the password", err)
			}
			for _, sentinel := range []error{ErrMissingRedis, ErrUnknownParameter, ErrInvalidParameter, ErrUnknownDriver} {
				if errors.Is(err, sentinel) {
					t.Errorf("inner driver's error %q was turned into %v", err, sentinel)
				}
			}
		})
	}
}

// TestOpenErrorLeavesNothingOpen: when the Redis URL is rejected after the
// inner connector exists, the inner connector is closed.
func TestOpenErrorLeavesNothingOpen(t *testing.T) {
	st, id := newFakeState(t)
	_, err := sql.Open(DriverName, "cache_driver="+fullFakeName+" id="+id+" cache_redis=redis://cache/x")
	if !errors.Is(err, ErrInvalidParameter) {
		t.Fatalf("error %v, want ErrInvalidParameter", err)
	}
	if o, c := st.Count("Driver.OpenConnector"), st.Count("Connector.Close"); o != c {
		t.Errorf("inner connectors opened %d, closed %d", o, c)
	}
}

var registerCounter atomic.Int64

// uniqueDriverName returns a driver name nobody has registered, also when
// the tests run several times in one process (-count).
func uniqueDriverName(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("wtcache-test-%d", registerCounter.Add(1))
}

func TestRegister(t *testing.T) {
	ctx := context.Background()

	t.Run("wraps the inner driver", func(t *testing.T) {
		name := uniqueDriverName(t)
		if err := Register(name, fullFakeDriver{}); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(sql.Drivers(), name) {
			t.Fatalf("%q not registered", name)
		}
		st, id := newFakeState(t)
		db, err := sql.Open(name, "somekey=v "+fakeRedisParam+" id="+id)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, fakeExec0); err != nil {
			t.Fatal(err)
		}
		if got, want := st.DSNs(), []string{fakeInnerDSN(id)}; !slices.Equal(got, want) {
			t.Errorf("inner DSNs %q, want %q", got, want)
		}
		if st.Count("Conn.ExecContext "+fakeExec0) != 1 {
			t.Errorf("statement did not reach the inner driver: %q", st.Calls())
		}
		if _, ok := db.Driver().(*wtDriver); !ok {
			t.Errorf("db.Driver() is %T, want wtcache's", db.Driver())
		}
	})

	t.Run("refuses a taken name", func(t *testing.T) {
		name := uniqueDriverName(t)
		if err := Register(name, fullFakeDriver{}); err != nil {
			t.Fatal(err)
		}
		for _, taken := range []string{name, DriverName, legacyFakeName} {
			err := Register(taken, fullFakeDriver{})
			if err == nil {
				t.Errorf("Register(%q) twice: nil error", taken)
				continue
			}
			if !strings.Contains(err.Error(), taken) {
				t.Errorf("error %q does not name %q", err, taken)
			}
		}
	})

	t.Run("refuses a nil inner driver", func(t *testing.T) {
		if err := Register(uniqueDriverName(t), nil); !errors.Is(err, ErrNilArgument) {
			t.Errorf("error %v, want ErrNilArgument", err)
		}
	})

	t.Run("refuses cache_driver in the DSN", func(t *testing.T) {
		name := uniqueDriverName(t)
		if err := Register(name, fullFakeDriver{}); err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{legacyFakeName, fullFakeName} {
			_, err := sql.Open(name, "cache_driver="+v+" "+fakeRedisParam)
			if !errors.Is(err, ErrInvalidParameter) || !strings.Contains(err.Error(), "cache_driver") {
				t.Errorf("cache_driver=%s: error %v, want ErrInvalidParameter naming cache_driver", v, err)
			}
		}
	})

	t.Run("a registered wtcache driver cannot be an inner driver", func(t *testing.T) {
		name := uniqueDriverName(t)
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
		t.Cleanup(func() { _ = rdb.Close() })
		if err := Register(name, fullFakeDriver{}, WithRedis(rdb)); err != nil {
			t.Fatal(err)
		}
		_, err := sql.Open(DriverName, "cache_driver="+name+" "+fakeRedisParam)
		if !errors.Is(err, ErrUnknownDriver) {
			t.Errorf("error %v, want ErrUnknownDriver", err)
		}
	})
}

func TestNilArguments(t *testing.T) {
	_, id := newFakeState(t)
	inner, err := fullFakeDriver{}.OpenConnector(fakeInnerDSN(id))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })

	tests := []struct {
		name  string
		inner driver.Connector
		rdb   redis.UniversalClient
	}{
		{"nil inner", nil, rdb},
		{"nil Redis client", inner, nil},
		{"both nil", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewConnector(tc.inner, tc.rdb)
			if !errors.Is(err, ErrNilArgument) || c != nil {
				t.Errorf("NewConnector = %v, %v; want nil, ErrNilArgument", c, err)
			}
			func() {
				defer func() {
					r := recover()
					err, _ := r.(error)
					if !errors.Is(err, ErrNilArgument) {
						t.Errorf("OpenDB panicked with %v, want an error wrapping ErrNilArgument", r)
					}
				}()
				db := OpenDB(tc.inner, tc.rdb)
				_ = db.Close()
				t.Error("OpenDB did not panic")
			}()
		})
	}
}

// openTestConnector parses dsn as sql.Open would and returns wtcache's
// connector, whose configuration the test may then inspect.
func openTestConnector(t testing.TB, dsn string) *connector {
	t.Helper()
	dc, err := (&wtDriver{}).OpenConnector(dsn)
	if err != nil {
		t.Fatalf("OpenConnector: %v", err)
	}
	c, ok := dc.(*connector)
	if !ok {
		t.Fatalf("OpenConnector returned %T, want *connector", dc)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestRedisFromDSN checks, against miniredis, that the client built from
// cache_redis uses the URL's password, user and database number.
func TestRedisFromDSN(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		redisURL func(addr string) string
		auth     func(s *miniredis.Miniredis)
		db       int
		dsn      func(redisURL string) string
	}{
		{
			name:     "password and db, keyword/value, legacy fake",
			redisURL: func(addr string) string { return "redis://:" + redisSecret + "@" + addr + "/3" },
			auth:     func(s *miniredis.Miniredis) { s.RequireAuth(redisSecret) },
			db:       3,
			dsn: func(r string) string {
				return "cache_driver=" + legacyFakeName + " cache_redis=" + r + " host=h"
			},
		},
		{
			name:     "user, password and db, URL form, default pgx driver",
			redisURL: func(addr string) string { return "redis://app:" + redisSecret + "@" + addr + "/5" },
			auth:     func(s *miniredis.Miniredis) { s.RequireUserAuth("app", redisSecret) },
			db:       5,
			dsn: func(r string) string {
				return "postgres://app@127.0.0.1:1/bank?sslmode=disable&cache_redis=" + url.QueryEscape(r)
			},
		},
		{
			name:     "no password, default db, quoted keyword/value",
			redisURL: func(addr string) string { return "redis://" + addr },
			auth:     func(*miniredis.Miniredis) {},
			db:       0,
			dsn: func(r string) string {
				return "host=127.0.0.1 port=1 cache_redis='" + r + "' sslmode=disable"
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := miniredis.RunT(t)
			tc.auth(s)
			redisURL := tc.redisURL(s.Addr())
			c := openTestConnector(t, tc.dsn(redisURL))

			if !c.cfg.ownRedis {
				t.Error("client built from the DSN is not marked as wtcache's own")
			}
			if strings.Contains(c.cfg.redisAddr, redisSecret) || !strings.Contains(c.cfg.redisAddr, s.Addr()) {
				t.Errorf("redisAddr %q: want the server's address without the password", c.cfg.redisAddr)
			}
			if err := c.cfg.redis.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatalf("SET through the client built from the DSN: %v", err)
			}
			if got, err := s.DB(tc.db).Get("k"); err != nil || got != "v" {
				t.Errorf("db %d holds k=%q (%v), want v", tc.db, got, err)
			}
		})
	}
}

// TestCloseReleasesOnlyOwnedRedis: a client that wtcache built from the DSN
// is closed with the *sql.DB; a client the caller passed in code never is.
func TestCloseReleasesOnlyOwnedRedis(t *testing.T) {
	ctx := context.Background()

	t.Run("client built from cache_redis is closed by db.Close", func(t *testing.T) {
		s := miniredis.RunT(t)
		st, id := newFakeState(t)
		c := openTestConnector(t, "cache_driver="+fullFakeName+" id="+id+" cache_redis=redis://"+s.Addr()+"/0")
		db := sql.OpenDB(c)
		if err := db.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.cfg.redis.Ping(ctx).Err(); err != nil {
			t.Fatalf("Redis ping before Close: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.cfg.redis.Ping(ctx).Err(); !errors.Is(err, redis.ErrClosed) {
			t.Errorf("Redis ping after db.Close: %v, want redis.ErrClosed", err)
		}
		if n := st.Count("Connector.Close"); n != 1 {
			t.Errorf("inner connector closed %d times, want 1", n)
		}
		if err := c.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})

	openers := []struct {
		name string
		open func(t *testing.T, inner driver.Connector, rdb redis.UniversalClient, dsn string) *sql.DB
	}{
		{"NewConnector", func(t *testing.T, inner driver.Connector, rdb redis.UniversalClient, _ string) *sql.DB {
			c, err := NewConnector(inner, rdb)
			if err != nil {
				t.Fatal(err)
			}
			return sql.OpenDB(c)
		}},
		{"OpenDB", func(t *testing.T, inner driver.Connector, rdb redis.UniversalClient, _ string) *sql.DB {
			return OpenDB(inner, rdb)
		}},
		{"Register with WithRedis", func(t *testing.T, _ driver.Connector, rdb redis.UniversalClient, dsn string) *sql.DB {
			name := uniqueDriverName(t)
			if err := Register(name, fullFakeDriver{}, WithRedis(rdb)); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open(name, dsn)
			if err != nil {
				t.Fatal(err)
			}
			return db
		}},
	}
	for _, o := range openers {
		t.Run(o.name+" never closes the caller's client", func(t *testing.T) {
			s := miniredis.RunT(t)
			rdb := redis.NewClient(&redis.Options{Addr: s.Addr()})
			t.Cleanup(func() { _ = rdb.Close() })
			st, id := newFakeState(t)
			inner, err := fullFakeDriver{}.OpenConnector(fakeInnerDSN(id))
			if err != nil {
				t.Fatal(err)
			}
			db := o.open(t, inner, rdb, fakeInnerDSN(id))
			if err := db.PingContext(ctx); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if err := rdb.Ping(ctx).Err(); err != nil {
				t.Errorf("caller's Redis client after db.Close: %v", err)
			}
			if n := st.Count("Connector.Close"); n != 1 {
				t.Errorf("inner connector closed %d times, want 1", n)
			}
		})
	}

	t.Run("cache_redis overrides WithRedis and only its own client is closed", func(t *testing.T) {
		s := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: s.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		d := &wtDriver{inner: fullFakeDriver{}, opts: []Option{WithRedis(rdb)}}
		_, id := newFakeState(t)
		dc, err := d.OpenConnector("id=" + id + " cache_redis=redis://" + s.Addr() + "/1")
		if err != nil {
			t.Fatal(err)
		}
		c := dc.(*connector)
		if c.cfg.redis == redis.UniversalClient(rdb) || !c.cfg.ownRedis {
			t.Fatal("cache_redis did not take precedence over WithRedis")
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.cfg.redis.Ping(ctx).Err(); !errors.Is(err, redis.ErrClosed) {
			t.Errorf("DSN's client after Close: %v, want redis.ErrClosed", err)
		}
		if err := rdb.Ping(ctx).Err(); err != nil {
			t.Errorf("WithRedis client after Close: %v", err)
		}
	})
}

// TestRedisClusterURL: redis+cluster:// (and rediss+cluster://) builds a
// *redis.ClusterClient with every node; nothing is contacted.
func TestRedisClusterURL(t *testing.T) {
	tests := []struct {
		name      string
		dsn       string
		wantAddrs []string
		wantTLS   bool
	}{
		{
			name:      "keyword/value",
			dsn:       "cache_driver=" + legacyFakeName + " cache_redis=redis+cluster://:" + redisSecret + "@127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002",
			wantAddrs: []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"},
		},
		{
			name:      "TLS",
			dsn:       "cache_driver=" + legacyFakeName + " cache_redis=rediss+cluster://:" + redisSecret + "@127.0.0.1:7000",
			wantAddrs: []string{"127.0.0.1:7000"},
			wantTLS:   true,
		},
		{
			// In the URL form the '+' of the scheme is percent-encoded:
			// dsn.Split decodes a literal '+' in a query value as a space.
			name:      "URL form, encoded",
			dsn:       "postgres://db/bank?cache_redis=" + url.QueryEscape("redis+cluster://:"+redisSecret+"@127.0.0.1:7000?addr=127.0.0.1:7001"),
			wantAddrs: []string{"127.0.0.1:7000", "127.0.0.1:7001"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := openTestConnector(t, tc.dsn)
			cc, ok := c.cfg.redis.(*redis.ClusterClient)
			if !ok {
				t.Fatalf("client is %T, want *redis.ClusterClient", c.cfg.redis)
			}
			opts := cc.Options()
			if !slices.Equal(opts.Addrs, tc.wantAddrs) {
				t.Errorf("Addrs %q, want %q", opts.Addrs, tc.wantAddrs)
			}
			if opts.Password != redisSecret {
				t.Errorf("Password %q, want the URL's", opts.Password)
			}
			if (opts.TLSConfig != nil) != tc.wantTLS {
				t.Errorf("TLS configured: %t, want %t", opts.TLSConfig != nil, tc.wantTLS)
			}
			if strings.Contains(c.cfg.redisAddr, redisSecret) {
				t.Errorf("redisAddr %q holds the password", c.cfg.redisAddr)
			}
		})
	}
	t.Run("plain URL gives a single-node client", func(t *testing.T) {
		c := openTestConnector(t, "cache_driver="+legacyFakeName+" "+fakeRedisParam)
		if _, ok := c.cfg.redis.(*redis.Client); !ok {
			t.Errorf("client is %T, want *redis.Client", c.cfg.redis)
		}
	})
}

// TestDriverOpenOwnsItsConnector: wtDriver.Open, which database/sql never
// calls, gives a connection whose Close releases its connector.
func TestDriverOpenOwnsItsConnector(t *testing.T) {
	s := miniredis.RunT(t)
	st, id := newFakeState(t)
	cn, err := (&wtDriver{}).Open("cache_driver=" + fullFakeName + " id=" + id + " cache_redis=redis://" + s.Addr() + "/0")
	if err != nil {
		t.Fatal(err)
	}
	rdb := cn.(*conn).ownConnector.cfg.redis
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := cn.Close(); err != nil {
		t.Fatal(err)
	}
	if n := st.Count("Connector.Close"); n != 1 {
		t.Errorf("inner connector closed %d times, want 1", n)
	}
	if err := rdb.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("Redis client after the connection's Close: %v, want redis.ErrClosed", err)
	}
}

// TestSQLMockThroughWtcache wraps sqlmock (cache_driver=sqlmock): results
// and errors set on the mock arrive unchanged, as they do without wtcache.
// The Redis server is a miniredis, and the statements are reads without a
// FROM clause, which wtcache passes through, so that the test keeps proving
// transparency alone when wtcache's caching paths exist.
func TestSQLMockThroughWtcache(t *testing.T) {
	ctx := context.Background()
	s := miniredis.RunT(t)
	mockDSN := fmt.Sprintf("mock=wtcache%d", registerCounter.Add(1))
	direct, mock, err := sqlmock.NewWithDSN(mockDSN)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := sql.Open(DriverName, mockDSN+" cache_driver=sqlmock cache_redis=redis://"+s.Addr()+"/0")
	if err != nil {
		t.Fatal(err)
	}
	mockErr := errors.New("mock: deadlock detected")

	type outcome struct {
		affected int64
		rows     string
		err      error
	}
	run := func(db *sql.DB) outcome {
		mock.ExpectExec(`SELECT pg_notify\(\$1, \$2\)`).
			WithArgs("accounts", 1).WillReturnResult(sqlmock.NewResult(0, 1))
		mock.ExpectQuery(`SELECT \$1::bigint AS id, current_user AS owner`).
			WithArgs(1).WillReturnRows(sqlmock.NewRows([]string{"id", "owner"}).AddRow(1, "ann").AddRow(2, "bob"))
		mock.ExpectExec(`SELECT pg_terminate_backend\(\$1\)`).WithArgs(42).WillReturnError(mockErr)

		var o outcome
		res, err := db.ExecContext(ctx, "SELECT pg_notify($1, $2)", "accounts", 1)
		if err != nil {
			t.Fatalf("exec: %v", err)
		}
		if o.affected, err = res.RowsAffected(); err != nil {
			t.Fatal(err)
		}
		rows, err := db.QueryContext(ctx, "SELECT $1::bigint AS id, current_user AS owner", 1)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		for rows.Next() {
			var id int64
			var owner string
			if err := rows.Scan(&id, &owner); err != nil {
				t.Fatal(err)
			}
			o.rows += fmt.Sprintf("%d:%s ", id, owner)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		_, o.err = db.ExecContext(ctx, "SELECT pg_terminate_backend($1)", 42)
		return o
	}

	want := run(direct)
	got := run(wrapped)
	if want.affected != 1 || want.rows != "1:ann 2:bob " || want.err != mockErr { //nolint:errorlint // identity required
		t.Fatalf("reference (sqlmock directly) = %+v", want)
	}
	if got.affected != want.affected || got.rows != want.rows {
		t.Errorf("through wtcache %+v, directly %+v", got, want)
	}
	if got.err != mockErr { //nolint:errorlint // the mock's error must arrive as the same value
		t.Errorf("error through wtcache %#v, want the mock's %#v", got.err, mockErr)
	}

	// Both *sql.DB share the mock's single connection: each closes it once.
	mock.ExpectClose()
	mock.ExpectClose()
	if err := wrapped.Close(); err != nil {
		t.Errorf("wrapped Close: %v", err)
	}
	if err := direct.Close(); err != nil {
		t.Errorf("direct Close: %v", err)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}

// TestRedisTimeoutBoundsTheClient: a Redis client built from cache_redis
// carries cache_timeout as its own timeouts, honours context deadlines and
// never retries, so the deadline wtcache gives each call (a boundCtx, no
// timer) bounds every wait; a client passed in gets a context with a
// timeout instead.
func TestRedisTimeoutBoundsTheClient(t *testing.T) {
	c, err := (&wtDriver{}).openConnector("host=db cache_redis=redis://cache:6379/0 cache_timeout=123ms")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := c.cfg.redis.(*redis.Client).Options()
	for name, d := range map[string]time.Duration{"dial": o.DialTimeout, "read": o.ReadTimeout, "write": o.WriteTimeout, "pool": o.PoolTimeout} {
		if d != 123*time.Millisecond {
			t.Errorf("%s timeout %v, want cache_timeout (123ms)", name, d)
		}
	}
	if !o.ContextTimeoutEnabled || o.MaxRetries != 0 || o.DialerRetries != 1 || o.Dialer == nil {
		t.Errorf("ContextTimeoutEnabled %v, MaxRetries %d, DialerRetries %d, own dialer %v: want true, 0, 1, true",
			o.ContextTimeoutEnabled, o.MaxRetries, o.DialerRetries, o.Dialer != nil)
	}
	bctx, bcancel := c.redisCtx(context.Background())
	if dl, ok := bctx.Deadline(); !ok || time.Until(dl) > 123*time.Millisecond {
		t.Errorf("deadline %v %v, want within 123ms", dl, ok)
	}
	if _, isBound := bctx.(*boundCtx); !isBound {
		t.Errorf("a client built from cache_redis got a %T, want a boundCtx (no timer)", bctx)
	}
	bcancel()

	rdb := redis.NewClient(&redis.Options{Addr: "cache:6379"})
	defer rdb.Close()
	conn, err := NewConnector(dsnConnector{}, rdb, WithRedisTimeout(123*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	uc := conn.(*connector)
	ctx, cancel := uc.redisCtx(context.Background())
	defer cancel()
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > 123*time.Millisecond {
		t.Errorf("deadline %v %v, want within 123ms", dl, ok)
	}
	if _, isBound := ctx.(*boundCtx); isBound {
		t.Error("a client passed in got a boundCtx: its retries would not be bounded")
	}
}

// TestDSNCaseAndRegisteredConfig: a cache_ parameter in another letter
// case is an error at sql.Open (not a FATAL at connect, as a session
// parameter the server does not know); a keyword/value DSN that starts with
// the name of a configuration registered with pgx keeps the cache_
// parameters after it.
func TestDSNCaseAndRegisteredConfig(t *testing.T) {
	for _, d := range []string{
		"host=db cache_redis=redis://r CACHE_TTL=5m",
		"host=db cache_redis=redis://r Cache_Ttl=5m",
		"postgres://db/x?cache_redis=redis%3A%2F%2Fr&CACHE_TTL=5m",
		"host=db CACHE_REDIS=redis://r",
	} {
		_, err := (&wtDriver{}).openConnector(d)
		if !errors.Is(err, ErrUnknownParameter) || !strings.Contains(err.Error(), "lower case") {
			t.Errorf("%s: %v, want ErrUnknownParameter saying parameter names are lower case", d, err)
		}
	}
	inner, params, err := dsn.Split("registeredConnConfig7 cache_redis=redis://r cache_ttl=5m")
	if err != nil || inner != "registeredConnConfig7" || len(params) != 2 {
		t.Fatalf("registered name: inner %q, params %v, %v", inner, params, err)
	}

	env := needServices(t)
	cfg, err := pgx.ParseConfig(env.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := stdlib.RegisterConnConfig(cfg)
	defer stdlib.UnregisterConnConfig(name)
	db, err := sql.Open(DriverName, name+" cache_redis="+env.redisURL+" cache_ttl=5m")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		t.Fatalf("a registered configuration with cache_ parameters: %v", err)
	}
}
