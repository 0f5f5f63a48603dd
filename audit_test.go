package wtcache

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestAudit: the audit finds an entry that differs from its row (a write
// made outside wtcache, without the change feed), reports table, key and
// what differs, and nothing once the entry is invalidated; the command
// prints the same and exits 1.
func TestAudit(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	table := fmt.Sprintf("audit_%d", os.Getpid())
	mustExec(t, p, `DROP TABLE IF EXISTS `+table+`; CREATE TABLE `+table+` (id bigint PRIMARY KEY, v text NOT NULL); INSERT INTO `+table+` SELECT g, 'v' || g FROM generate_series(1, 20) g`)
	t.Cleanup(func() { mustExec(t, p, `DROP TABLE IF EXISTS `+table) })
	prefix := fmt.Sprintf("audit%d-%d", os.Getpid(), prefixSeq.Add(1))
	db, c := e.open(t, prefix)
	for range 2 {
		for id := 1; id <= 20; id++ {
			var v string
			if err := db.QueryRowContext(ctx, `SELECT v FROM `+table+` WHERE id = $1`, id).Scan(&v); err != nil {
				t.Fatal(err)
			}
		}
		c.settle()
	}
	rep, err := Audit(ctx, db, AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checked != 20 || len(rep.Diffs) != 0 {
		t.Fatalf("after the fills: %+v, want 20 entries checked and no difference", rep)
	}
	mustExec(t, p, `UPDATE `+table+` SET v = 'changed' WHERE id IN (3, 7)`) // outside wtcache
	rep, err = Audit(ctx, db, AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Diffs) != 2 {
		t.Fatalf("after two outside writes: %+v, want 2 differences", rep)
	}
	for _, d := range rep.Diffs {
		if !strings.HasSuffix(d.Table, table) || (d.Key != "3" && d.Key != "7") || !strings.Contains(d.Detail, "changed") {
			t.Errorf("difference %+v", d)
		}
	}
	half, err := Audit(ctx, db, AuditOptions{Sample: 0.5})
	if err != nil || half.Checked == 0 || half.Checked >= 20 {
		t.Errorf("a 0.5 sample checked %d of 20 (%v)", half.Checked, err)
	}
	// The command.
	sep := "?"
	if strings.Contains(e.dbURL, "?") {
		sep = "&"
	}
	dsn := e.dbURL + sep + "cache_redis=" + url.QueryEscape(e.redisURL) + "&cache_prefix=" + prefix
	out, err := exec.Command("go", "run", "./cmd/wtcache", "audit", dsn).CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "2 differences") {
		t.Errorf("wtcache audit: exit %d (%v), output:\n%s", code, err, out)
	}
	if err := Invalidate(ctx, db, table, int64(3), int64(7)); err != nil {
		t.Fatal(err)
	}
	if rep, err = Audit(ctx, db, AuditOptions{}); err != nil || len(rep.Diffs) != 0 || rep.Checked != 18 {
		t.Fatalf("after invalidating them: %+v %v", rep, err)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
