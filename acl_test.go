package wtcache

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestACLCoversEveryCommand: every command a script of wtcache calls (any
// .go file of the library holding Lua) is in the ACL wtcache documents, so
// that a rare path (a dead writer's cleanup, a corrupt key's removal) never
// meets NOPERM in production.
func TestACLCoversEveryCommand(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	more, _ := filepath.Glob("internal/proto/*.go")
	call := regexp.MustCompile(`redis\.p?call\('([A-Za-z]+)'`)
	found := map[string]bool{}
	for _, f := range append(files, more...) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range call.FindAllStringSubmatch(string(b), -1) {
			found[strings.ToLower(m[1])] = true
		}
	}
	if len(found) < 10 {
		t.Fatalf("found only %v: the pattern no longer matches the scripts", found)
	}
	for c := range found {
		if !slices.Contains(aclCommands, c) {
			t.Errorf("a script calls %s, which the documented ACL does not allow", strings.ToUpper(c))
		}
	}
	if got := RedisACL("a*b"); !strings.Contains(got, `~{a\*b:*`) {
		t.Errorf("key pattern not escaped: %s", got)
	}
}

// aclUser makes a Redis user with exactly RedisACL(prefix) (minus the
// commands in without) and returns the Redis URL that logs in as it.
func aclUser(t *testing.T, e itEnv, prefix string, without ...string) string {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("wtacl%d", time.Now().UnixNano())
	rules := strings.Fields(RedisACL(prefix))
	for _, w := range without {
		rules = append(rules, "-"+w)
	}
	args := []any{"acl", "setuser", name, "reset", "on", ">acl-secret"}
	for _, r := range rules {
		args = append(args, r)
	}
	if err := e.rdb.Do(ctx, args...).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.rdb.Do(context.Background(), "acl", "deluser", name) })
	u, err := url.Parse(e.redisURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(name, "acl-secret")
	return u.String()
}

// TestACLWorkload: the whole range of wtcache's Redis traffic (misses and
// fills, hits, the near cache, row and table-wide writes, a database-wide
// write, Invalidate, the audit) runs under a user with exactly the
// documented ACL and meets no refusal; without one of its commands the
// check at the first connection fails with ErrCacheCheck, and a
// wrong password too.
func TestACLWorkload(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	ctx := context.Background()
	prefix := fmt.Sprintf("acl%d", time.Now().UnixNano())
	e2 := e
	e2.redisURL = aclUser(t, e, prefix)
	db, c := e2.open(t, prefix, "cache_check=on", "cache_local=on", "cache_local_tables=wt_accounts")
	if err := db.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	waitNearServing(t, c)
	for round := 0; round < 3; round++ {
		for id := 1; id <= 4; id++ {
			balance(t, db, id)
			c.settle()
			balance(t, db, id)
		}
		mustExec(t, db, "UPDATE wt_accounts SET balance = balance + 1 WHERE id = $1", 1)
		mustExec(t, db, "UPDATE wt_accounts SET balance = balance + 1 WHERE owner = $1", "owner 2")
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE wt_accounts SET balance = balance - 1 WHERE id = 3"); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		mustExec(t, db, "DELETE FROM wt_entries WHERE id = $1", 100+round)
		mustExec(t, db, "COMMENT ON TABLE wt_entries IS 'acl'") // database-wide
		if err := Invalidate(ctx, db, "wt_accounts", 4); err != nil {
			t.Fatal(err)
		}
		if err := Invalidate(ctx, db, "wt_accounts"); err != nil {
			t.Fatal(err)
		}
		nearWarm(t, db, c, 2)
	}
	if _, err := Audit(ctx, db, AuditOptions{}); err != nil {
		t.Fatal(err)
	}
	s, _ := DBStats(ctx, db)
	if s.CacheOutages != 0 || s.ReleaseFailures != 0 || s.MissReasons[missCacheError] != 0 || s.Hits == 0 || s.Near.Hits == 0 {
		t.Fatalf("a refusal under the documented ACL: %+v", s)
	}

	for _, missing := range []string{"hdel", "evalsha", "mget"} {
		e3 := e
		e3.redisURL = aclUser(t, e, prefix, missing)
		db, _ := e3.open(t, prefix, "cache_check=on")
		err := db.PingContext(ctx)
		if !errors.Is(err, ErrCacheCheck) || !strings.Contains(err.Error(), "NOPERM") && !strings.Contains(err.Error(), "can't run this command") {
			t.Errorf("without %s: first connection: %v", missing, err)
		}
	}
	e4 := e
	u, _ := url.Parse(aclUser(t, e, prefix))
	u.User = url.UserPassword(u.User.Username(), "wrong-password")
	e4.redisURL = u.String()
	bad, bc := e4.open(t, prefix)
	balance(t, bad, 1) // no check: reads go on from PostgreSQL
	waitFor(t, 2*time.Second, "the breaker", func() bool { return bc.cacheDown() })
	db5, _ := e4.open(t, prefix, "cache_check=on")
	if err := db5.PingContext(ctx); !errors.Is(err, ErrCacheCheck) || strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("wrong password, first connection: %v", err)
	}
}

// TestACLDocumented: the ACL the README and SECURITY.md show is exactly
// RedisACL's for the default prefix.
func TestACLDocumented(t *testing.T) {
	want := strings.Fields("ACL SETUSER wtcache on >PASSWORD " + RedisACL(""))
	for _, doc := range []string{"README.md", "SECURITY.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		i := strings.Index(text, "ACL SETUSER wtcache")
		if i < 0 {
			t.Errorf("%s shows no ACL", doc)
			continue
		}
		end := strings.Index(text[i:], "```")
		if got := strings.Fields(text[i : i+end]); !slices.Equal(got, want) {
			t.Errorf("%s shows the ACL\n%v\nRedisACL gives\n%v", doc, got, want)
		}
	}
}
