package recognizetest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/wtcache/wtcache/internal/recognize"
)

// TestLookupsOnServer asks a real PostgreSQL server (WTCACHE_TEST_DATABASE,
// as the root module's integration tests) to parse every text of the corpus
// that the recognizer accepts as a Lookup. The server must get past parsing:
// an error of class 42601 (syntax error) or 22 (a bad literal, e.g. an
// invalid escape) means the recognizer would serve a row where the server
// answers with an error. Other errors (no such table) are expected: the
// corpus names tables that do not exist.
//
// pg_query is PostgreSQL 17; this test checks whatever version the server
// runs (15 on this project's machines), which catches lexer differences
// between versions.
func TestLookupsOnServer(t *testing.T) {
	url := os.Getenv("WTCACHE_TEST_DATABASE")
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("WTCACHE_TEST_DATABASE is not set, and CI=true")
		}
		t.Skip("WTCACHE_TEST_DATABASE is not set (a postgres:// URL)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var version string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		t.Fatal(err)
	}

	checked, rejected := 0, 0
	for _, e := range buildCorpus(t) {
		cl := recognize.Classify(e.sql)
		if len(cl.Statements) != 1 || cl.Statements[0].Lookup == nil {
			continue
		}
		checked++
		_, err := conn.Prepare(ctx, "", e.sql) // the unnamed statement: parse, no execution
		var pe *pgconn.PgError
		switch {
		case err == nil:
		case errors.As(err, &pe):
			if pe.Code != "42601" && !strings.HasPrefix(pe.Code, "22") {
				continue
			}
			rejected++
			if rejected <= 40 {
				t.Errorf("[%s] Lookup %s for a text PostgreSQL %s rejects: %v\n\tSQL: %q", e.origin, cl.Statements[0].Lookup, version, err, e.sql)
			}
		default:
			t.Fatalf("%q: %v", e.sql, err)
		}
	}
	if rejected > 40 {
		t.Errorf("... %d texts in all", rejected)
	}
	t.Logf("PostgreSQL %s parsed %d of the %d texts the recognizer accepts as Lookups", version, checked-rejected, checked)
}
