package dsn_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/wtcache/wtcache/internal/dsn"
)

type splitCase struct {
	name       string
	in         string
	wantInner  string
	wantParams []dsn.Param
}

func runSplitCases(t *testing.T, cases []splitCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inner, params, err := dsn.Split(tc.in)
			if err != nil {
				t.Fatalf("Split(%q): %v", tc.in, err)
			}
			if inner != tc.wantInner {
				t.Errorf("inner DSN\n got %q\nwant %q", inner, tc.wantInner)
			}
			if !slices.Equal(params, tc.wantParams) {
				t.Errorf("params\n got %q\nwant %q", params, tc.wantParams)
			}
		})
	}
}

func p(k, v string) dsn.Param { return dsn.Param{Key: k, Value: v} }

func TestSplitURL(t *testing.T) {
	runSplitCases(t, []splitCase{
		// As libpq and pgx read a URL: no fragment ('#' is part of its
		// value), the user information ends at its first '@' (a '?' in a
		// password does not start the query), empty parts stay.
		{
			name:       "a '#' is part of its value",
			in:         "postgres://db/bank?sslmode=disable#x&cache_key=0123456789abcdef#y",
			wantInner:  "postgres://db/bank?sslmode=disable#x",
			wantParams: []dsn.Param{p("cache_key", "0123456789abcdef#y")},
		},
		{
			name:       "a '?', '&' and '#' in the password",
			in:         "postgres://u:p?x&y#z@h/db?sslmode=disable&cache_redis=r",
			wantInner:  "postgres://u:p?x&y#z@h/db?sslmode=disable",
			wantParams: []dsn.Param{p("cache_redis", "r")},
		},
		{
			name:       "empty parts stay for the inner driver",
			in:         "postgres://h/db?&sslmode=disable&&cache_redis=r",
			wantInner:  "postgres://h/db?&sslmode=disable&",
			wantParams: []dsn.Param{p("cache_redis", "r")},
		},
		{
			name:       "postgres scheme, percent-encoded cache_redis",
			in:         "postgres://app:pw@db.example:5432/bank?sslmode=disable&cache_redis=redis%3A%2F%2F%3Ar3dis%40cache%3A6379%2F2",
			wantInner:  "postgres://app:pw@db.example:5432/bank?sslmode=disable",
			wantParams: []dsn.Param{p("cache_redis", "redis://:r3dis@cache:6379/2")},
		},
		{
			name:       "postgresql scheme, cache_redis not encoded",
			in:         "postgresql://app@db/bank?cache_redis=redis://cache:6379/0&sslmode=require",
			wantInner:  "postgresql://app@db/bank?sslmode=require",
			wantParams: []dsn.Param{p("cache_redis", "redis://cache:6379/0")},
		},
		{
			name:      "no query",
			in:        "postgres://app:p%40ss@db:5432/bank",
			wantInner: "postgres://app:p%40ss@db:5432/bank",
		},
		{
			name:      "no query, fragment",
			in:        "postgres://db/bank#x",
			wantInner: "postgres://db/bank#x",
		},
		{
			name:       "only cache parameters: the question mark goes too",
			in:         "postgres://db/bank?cache_redis=redis://c/0&cache_driver=pgx",
			wantInner:  "postgres://db/bank",
			wantParams: []dsn.Param{p("cache_redis", "redis://c/0"), p("cache_driver", "pgx")},
		},
		{
			name:       "mixed order, parameters kept in order",
			in:         "postgres://db/bank?a=1&cache_driver=pgx&b=2&cache_redis=r&c=3",
			wantInner:  "postgres://db/bank?a=1&b=2&c=3",
			wantParams: []dsn.Param{p("cache_driver", "pgx"), p("cache_redis", "r")},
		},
		{
			// Encodings, '+', repeated keys, keys without values, malformed
			// escapes and several hosts are the inner driver's business:
			// they must arrive exactly as written.
			name: "inner parameters kept byte for byte",
			in: "postgres://u:p%2Fw@h1:5432,h2:5433/db?options=-c%20search_path%3Dapp&application_name=a+b" +
				"&cache_redis=r&target_session_attrs=read-write&x=1&x=2&weird=%zz&%zz=1&sslrootcert=%2Fetc%2Fca.pem",
			wantInner: "postgres://u:p%2Fw@h1:5432,h2:5433/db?options=-c%20search_path%3Dapp&application_name=a+b" +
				"&target_session_attrs=read-write&x=1&x=2&weird=%zz&%zz=1&sslrootcert=%2Fetc%2Fca.pem",
			wantParams: []dsn.Param{p("cache_redis", "r")},
		},
		{
			name:       "value with '=' and '?' in it",
			in:         "postgres://db/bank?cache_redis=redis://c/0?protocol=3",
			wantInner:  "postgres://db/bank",
			wantParams: []dsn.Param{p("cache_redis", "redis://c/0?protocol=3")},
		},
		{
			name:       "percent-encoded key is recognised",
			in:         "postgres://db/bank?cache%5Fredis=r&a=1",
			wantInner:  "postgres://db/bank?a=1",
			wantParams: []dsn.Param{p("cache_redis", "r")},
		},
		{
			name:      "a value that merely contains cache_ is not ours",
			in:        "postgres://db/bank?application_name=cache_app&options=cache_redis",
			wantInner: "postgres://db/bank?application_name=cache_app&options=cache_redis",
		},
	})
}

func TestSplitKeywordValue(t *testing.T) {
	runSplitCases(t, []splitCase{
		{
			name:       "plain pairs",
			in:         "host=localhost port=5432 cache_redis=redis://c:6379/0 dbname=bank",
			wantInner:  "host=localhost port=5432 dbname=bank",
			wantParams: []dsn.Param{p("cache_redis", "redis://c:6379/0")},
		},
		{
			name:       "cache parameters first, middle and last",
			in:         "cache_driver=pgx host=h cache_redis=r user=u cache_x=1",
			wantInner:  "host=h user=u",
			wantParams: []dsn.Param{p("cache_driver", "pgx"), p("cache_redis", "r"), p("cache_x", "1")},
		},
		{
			name:       "quoted inner values with spaces and escaped quotes are kept as written",
			in:         `password='it\'s a secret' cache_redis=r application_name='my app'`,
			wantInner:  `password='it\'s a secret' application_name='my app'`,
			wantParams: []dsn.Param{p("cache_redis", "r")},
		},
		{
			name:       "quoted cache value with spaces and an escaped quote",
			in:         `host=h cache_x='a b\'c' port=1`,
			wantInner:  "host=h port=1",
			wantParams: []dsn.Param{p("cache_x", "a b'c")},
		},
		{
			name:       "backslash escapes in unquoted and quoted values",
			in:         `cache_a=one\ two cache_b='c:\\dir' cache_c=x\\y host=h`,
			wantInner:  "host=h",
			wantParams: []dsn.Param{p("cache_a", "one two"), p("cache_b", `c:\dir`), p("cache_c", `x\y`)},
		},
		{
			name:       "quoted empty value",
			in:         "cache_x='' host=h",
			wantInner:  "host=h",
			wantParams: []dsn.Param{p("cache_x", "")},
		},
		{
			name:       "extra white space",
			in:         "  host = localhost\t\n cache_redis = redis://c/0 \r\n port=5432  ",
			wantInner:  "host = localhost port=5432",
			wantParams: []dsn.Param{p("cache_redis", "redis://c/0")},
		},
		{
			name:       "only cache parameters",
			in:         "cache_redis=r cache_driver=d",
			wantInner:  "",
			wantParams: []dsn.Param{p("cache_redis", "r"), p("cache_driver", "d")},
		},
		{
			name:      "empty",
			in:        "",
			wantInner: "",
		},
		{
			name:      "cache_ inside a quoted inner value is not ours",
			in:        "password='x cache_redis=y' host=h",
			wantInner: "password='x cache_redis=y' host=h",
		},
		{
			name:      "a value that merely starts with cache_ is not ours",
			in:        "application_name=cache_app host=h",
			wantInner: "application_name=cache_app host=h",
		},
		{
			name:       "unterminated quote in an inner value left for the inner driver",
			in:         "cache_redis=r host=h password='abc",
			wantInner:  "host=h password='abc",
			wantParams: []dsn.Param{p("cache_redis", "r")},
		},
		{
			name:       "a name without a value, as sqlmock's DSN, before the cache parameters",
			in:         "sqlmock_db_0 cache_driver=sqlmock cache_redis=r",
			wantInner:  "sqlmock_db_0",
			wantParams: []dsn.Param{p("cache_driver", "sqlmock"), p("cache_redis", "r")},
		},
	})
}

func TestSplitErrors(t *testing.T) {
	const secret = "s3cretpw"
	tests := []struct {
		name string
		in   string
		// wantIn must be in the message; refuse must not.
		wantIn []string
		refuse []string
	}{
		{name: "duplicate in URL", in: "postgres://db/bank?cache_redis=a&x=1&cache_redis=b", wantIn: []string{"cache_redis", "more than once"}},
		{name: "duplicate in URL, one percent-encoded key", in: "postgres://db/bank?cache_driver=a&cache%5Fdriver=b", wantIn: []string{"cache_driver", "more than once"}},
		{name: "duplicate in keyword/value", in: "cache_driver=a host=h cache_driver=a", wantIn: []string{"cache_driver", "more than once"}},
		{
			name:   "malformed percent-encoding in a cache value",
			in:     "postgres://db/bank?cache_redis=redis://:" + secret + "%zz@c:6379/0",
			wantIn: []string{"cache_redis", "percent-encoding"},
			refuse: []string{secret, "%zz", "redis://"},
		},
		{
			name:   "truncated percent-encoding in a cache value",
			in:     "postgres://db/bank?a=1&cache_redis=redis://:" + secret + "@c/0%2",
			wantIn: []string{"cache_redis"},
			refuse: []string{secret},
		},
		{name: "malformed percent-encoding in a cache key", in: "postgres://db/bank?cache_%zz=1", wantIn: []string{"cache_%zz"}},
		{name: "cache name without '='", in: "host=h cache_redis", wantIn: []string{"cache_redis", `"="`}},
		// The tail of a secret cut at an unencoded '&' or an unquoted
		// space: refused, never quoted (libpq and pgx refuse it too,
		// quoting it in their message).
		{name: "a query part without '='", in: "postgres://db/bank?cache_key=0123456789abcdef&" + secret, wantIn: []string{"%26"}, refuse: []string{secret}},
		{name: "a cache name without '=' in the URL", in: "postgres://db/bank?cache_redis&a=1", wantIn: []string{"%26"}},
		{name: "a word without '=' after a cache value", in: "host=h cache_key=0123456789abcdef " + secret, wantIn: []string{"quoted"}, refuse: []string{secret}},
		{name: "a word without '=' after a password", in: "host=h password=abc " + secret + " cache_redis=r", wantIn: []string{"quoted"}, refuse: []string{secret}},
		{
			name:   "unterminated quoted cache value",
			in:     "host=h cache_redis='redis://:" + secret + "@c/0",
			wantIn: []string{"cache_redis", "unterminated"},
			refuse: []string{secret},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inner, params, err := dsn.Split(tc.in)
			if err == nil {
				t.Fatalf("Split(%q) = %q, %q, nil; want an error", tc.in, inner, params)
			}
			msg := err.Error()
			for _, s := range tc.wantIn {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not contain %q", msg, s)
				}
			}
			for _, s := range tc.refuse {
				if strings.Contains(msg, s) {
					t.Errorf("error %q contains %q", msg, s)
				}
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	const secret = "s3cretpw"
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "redis password", in: "redis://:" + secret + "@cache:6379/2", want: "redis://:xxxxx@cache:6379/2"},
		{name: "redis user and password", in: "rediss://app:" + secret + "@cache:6380/0", want: "rediss://app:xxxxx@cache:6380/0"},
		{name: "postgres password", in: "postgres://app:" + secret + "@db/bank?sslmode=disable", want: "postgres://app:xxxxx@db/bank?sslmode=disable"},
		{name: "percent-encoded password", in: "redis://:s3cret%2Fpw@cache/0", want: "redis://:xxxxx@cache/0"},
		{name: "cluster URL", in: "redis+cluster://:" + secret + "@n1:7000?addr=n2:7000", want: "redis+cluster://:xxxxx@n1:7000?addr=n2:7000"},
		{name: "no password", in: "redis://cache:6379/0", want: "redis://cache:6379/0"},
		{name: "user only: it may be the secret", in: "redis://app@cache:6379/0", want: "redis://xxxxx@cache:6379/0"},
		{name: "secret in the user position", in: "redis://" + secret + "@cache:6379/0", want: "redis://xxxxx@cache:6379/0"},
		{name: "unparseable is replaced whole", in: "redis://:" + secret + "@cache:port/0", want: "(unparseable URL)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := dsn.RedactURL(tc.in)
			if got != tc.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if strings.Contains(got, "s3cret") {
				t.Errorf("RedactURL(%q) = %q still holds the password", tc.in, got)
			}
		})
	}
}
