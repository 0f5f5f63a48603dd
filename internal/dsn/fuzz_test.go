package dsn_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/wtcache/wtcache/internal/dsn"
)

// FuzzSplit: Split never panics; every parameter it returns is one of
// wtcache's (cache_ prefixed); what it hands the inner driver holds none of
// them (splitting it again finds nothing); and a cache_redis value added to
// any DSN in its form's quoting comes back exactly.
func FuzzSplit(f *testing.F) {
	f.Add("postgres://app:pw@db:5432/bank?sslmode=disable", "redis://:s3cret@cache:6379/0")
	f.Add("host=db user=app password='a b' dbname=bank", "redis://u:p@ss'w@cache/1")
	f.Add("", "redis://cache")
	f.Add("postgres://db/x?cache_ttl=1s#frag", "rediss://c:6380/0?skip_verify=true")
	f.Add("host=db cache_redis='redis://x' cache_ttl=1m", "unix:///tmp/r.sock")
	f.Add("postgresql://[::1]:5432/db?a=b&c=d", `redis://user:p@ss&w=rd 'q'\x#1@127.0.0.1:6379/0`)
	f.Fuzz(func(t *testing.T, d, redisURL string) {
		inner, params, err := dsn.Split(d)
		if err == nil {
			for _, p := range params {
				if !strings.HasPrefix(strings.ToLower(p.Key), "cache_") {
					t.Fatalf("Split(%q) returned parameter %q", d, p.Key)
				}
			}
			if again, ps, err := dsn.Split(inner); err == nil && len(ps) > 0 {
				t.Fatalf("Split(%q) left %q in the inner DSN %q (split again: %q)", d, ps, inner, again)
			}
		}
		// A cache_redis value added to a DSN without one comes back.
		if strings.Contains(strings.ToLower(d), "cache_") || strings.ContainsAny(redisURL, "\x00") {
			return
		}
		var with string
		if strings.Contains(d, "://") {
			sep := "?"
			if strings.Contains(d, "?") {
				sep = "&"
			}
			if strings.Contains(d, "#") {
				return // a fragment ends the query
			}
			// Percent-encoded with spaces as %20: a '+' is a '+', as in
			// libpq (redis+cluster://).
			with = d + sep + "cache_redis=" + strings.ReplaceAll(url.QueryEscape(redisURL), "+", "%20")
		} else {
			q := strings.ReplaceAll(strings.ReplaceAll(redisURL, `\`, `\\`), `'`, `\'`)
			with = strings.TrimRight(d, " \t\r\n\\") + " cache_redis='" + q + "'"
		}
		if _, _, err := dsn.Split(d); err != nil {
			return // the DSN itself is malformed
		}
		_, ps, err := dsn.Split(with)
		if err != nil {
			return // an unterminated quote in d swallows the parameter: an error is fine
		}
		for _, p := range ps {
			if p.Key == "cache_redis" && p.Value != redisURL {
				t.Fatalf("Split(%q): cache_redis = %q, want %q", with, p.Value, redisURL)
			}
		}
	})
}
