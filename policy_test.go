package wtcache

import (
	"slices"
	"testing"
	"time"

	"github.com/wtcache/wtcache/internal/recognize"
)

// Unit tests of the table policy; no services needed.

// TestTableTTLMostSpecificWins: with a TTL for "rp_x" (any schema) and one
// for "public.rp_x", public.rp_x always gets its own, whatever the map's
// iteration order; other schemas get the name's.
func TestTableTTLMostSpecificWins(t *testing.T) {
	cfg := defaultConfig()
	cfg.ttl = time.Minute
	for _, o := range []Option{WithTableTTL("rp_x", 5*time.Second), WithTableTTL("public.rp_x", 20*time.Second)} {
		o(&cfg)
	}
	check := func(tb recognize.Table, want time.Duration) {
		t.Helper()
		for i := 0; i < 200; i++ {
			if got := cfg.ttlFor(tb); got < want-want/10 || got > want+want/10 {
				t.Fatalf("ttlFor(%v) = %v, want %v ±10%%", tb, got, want)
			}
		}
	}
	check(recognize.Table{Schema: "public", Name: "rp_x"}, 20*time.Second)
	check(recognize.Table{Schema: "other", Name: "rp_x"}, 5*time.Second)
	check(recognize.Table{Schema: "public", Name: "rp_y"}, time.Minute)
}

// TestTableListQuotedNames: cache_tables, cache_exclude and WithTableTTL
// take names as PostgreSQL writes them; a quoted name may hold '.' or ','.
func TestTableListQuotedNames(t *testing.T) {
	got, err := parseTableList(`"rp_dot.x".y, rp_dot."x.y", "Mixed"."T", Plain, s.t, "a,b"`)
	if err != nil {
		t.Fatal(err)
	}
	want := []recognize.Table{
		{Schema: "rp_dot.x", Name: "y"},
		{Schema: "rp_dot", Name: "x.y"},
		{Schema: "Mixed", Name: "T"},
		{Name: "plain"},
		{Schema: "s", Name: "t"},
		{Name: "a,b"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("parseTableList:\n got  %q\n want %q", got, want)
	}
	cfg := defaultConfig()
	WithExclude(`"rp_dot.x".y`)(&cfg)
	if cfg.tableSelected(recognize.Table{Schema: "rp_dot.x", Name: "y"}) {
		t.Fatal(`cache_exclude="rp_dot.x".y does not exclude that table`)
	}
	if !cfg.tableSelected(recognize.Table{Schema: "rp_dot", Name: "x.y"}) {
		t.Fatal(`cache_exclude="rp_dot.x".y excludes rp_dot."x.y"`)
	}
}
