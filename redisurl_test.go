package wtcache

import (
	"errors"
	"strings"
	"testing"
)

// TestRedisURLOptionsRefused: options of cache_redis that would weaken the
// guarantees or contradict cache_timeout are refused with a reason naming
// them; their harmless spellings, and skip_verify spelled out with
// cache_redis_insecure=true, are accepted.
func TestRedisURLOptionsRefused(t *testing.T) {
	for _, tc := range []struct {
		redis, extra string
		refused      string // the option the error must name; "" when accepted
	}{
		{"redis+cluster://127.0.0.1:7000?addr=127.0.0.1:7001&read_only=true", "", "read_only"},
		{"redis+cluster://127.0.0.1:7000?read_only", "", "read_only"},
		{"redis+cluster://127.0.0.1:7000?route_by_latency=true", "", "route_by_latency"},
		{"redis+cluster://127.0.0.1:7000?route_randomly=1", "", "route_randomly"},
		{"redis+cluster://127.0.0.1:7000?read_only=false", "", ""},
		{"redis://127.0.0.1:6379/0?dial_timeout=1s", "", "dial_timeout"},
		{"redis://127.0.0.1:6379/0?read_timeout=1s", "", "read_timeout"},
		{"redis://127.0.0.1:6379/0?write_timeout=1s", "", "write_timeout"},
		{"redis://127.0.0.1:6379/0?pool_timeout=1s", "", "pool_timeout"},
		{"rediss://127.0.0.1:6380/0?skip_verify=true", "", "skip_verify"},
		{"rediss://127.0.0.1:6380/0?skip_verify=true", "cache_redis_insecure=false", "skip_verify"},
		{"rediss://127.0.0.1:6380/0?skip_verify=true", "cache_redis_insecure=true", ""},
		{"rediss://127.0.0.1:6380/0?skip_verify=false", "", ""},
		{"redis://127.0.0.1:6379/0?pool_size=5", "", ""},
	} {
		dsn := "host=db cache_redis='" + tc.redis + "' " + tc.extra
		c, err := (&wtDriver{}).openConnector(dsn)
		if c != nil {
			_ = c.Close()
		}
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s: refused: %v", dsn, err)
		case tc.refused != "" && err == nil:
			t.Errorf("%s: accepted; want it refused for %s", dsn, tc.refused)
		case tc.refused != "" && (!errors.Is(err, ErrInvalidParameter) || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("%s: %v; want ErrInvalidParameter naming %s", dsn, err, tc.refused)
		}
	}
}
