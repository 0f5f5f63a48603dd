package wtcache

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wtcache/wtcache/internal/rowcodec"
)

// TestSealerOpensOnlyItsOwn: for both modes, an image sealed for a key
// opens for that key and nothing else: not for another key, not with any
// one byte changed, truncated or extended, not under another secret, not
// as a plain image; the previous secret opens what it sealed, and the
// current one seals.
func TestSealerOpensOnlyItsOwn(t *testing.T) {
	cur, old, other := []byte("current secret, 32 bytes long..."), []byte("previous secret of sixteen+"), []byte("someone else's secret!!")
	img := []byte("W\x01 an image of a row, any bytes \x00\xff")
	for _, mode := range []EntryMode{EntryAuthenticate, EntryEncrypt} {
		t.Run(mode.String(), func(t *testing.T) {
			s, err := newSealer(mode, cur, old)
			if err != nil {
				t.Fatal(err)
			}
			sealed := s.seal("{p:t}:r:1", img)
			got, err := s.open("{p:t}:r:1", string(sealed))
			if err != nil || got != string(img) {
				t.Fatalf("open of its own seal: %q, %v", got, err)
			}
			if mode == EntryEncrypt && bytes.Contains(sealed, []byte("an image of a row")) {
				t.Fatal("the encrypted entry holds the image in clear")
			}
			if again := s.seal("{p:t}:r:1", img); mode == EntryEncrypt && bytes.Equal(again, sealed) {
				t.Fatal("two encryptions of one image are equal: the nonce repeats")
			}
			refused := func(what, key string, entry []byte) {
				t.Helper()
				if got, err := s.open(key, string(entry)); !errors.Is(err, errUnauthentic) {
					t.Errorf("%s: opened (%q, %v)", what, got, err)
				}
			}
			refused("another key", "{p:t}:r:2", sealed)
			refused("another table", "{p:u}:r:1", sealed)
			refused("the plain image", "{p:t}:r:1", img)
			refused("empty", "{p:t}:r:1", nil)
			for i := range sealed {
				for _, flip := range []byte{0x01, 0x80} {
					b := bytes.Clone(sealed)
					b[i] ^= flip
					refused(fmt.Sprintf("byte %d ^ %#x", i, flip), "{p:t}:r:1", b)
				}
				refused(fmt.Sprintf("truncated to %d", i), "{p:t}:r:1", sealed[:i])
			}
			refused("extended", "{p:t}:r:1", append(bytes.Clone(sealed), 0))
			stranger, _ := newSealer(mode, other)
			refused("sealed with another secret", "{p:t}:r:1", stranger.seal("{p:t}:r:1", img))
			wrongMode, _ := newSealer(1-mode, cur)
			refused("sealed in the other mode", "{p:t}:r:1", wrongMode.seal("{p:t}:r:1", img))

			// Rotation: what the old secret sealed opens after it became
			// cache_key_old; what the new one seals, an old-only reader
			// refuses.
			before, _ := newSealer(mode, old)
			if got, err := s.open("{p:t}:r:1", string(before.seal("{p:t}:r:1", img))); err != nil || got != string(img) {
				t.Errorf("an entry of the previous secret: %q, %v", got, err)
			}
			if _, err := before.open("{p:t}:r:1", string(sealed)); err == nil {
				t.Error("a reader with only the old secret opened an entry of the new one")
			}
		})
	}
	if _, err := newSealer(EntryAuthenticate, []byte("short")); !errors.Is(err, ErrInvalidParameter) {
		t.Errorf("a 5-byte secret: %v", err)
	}
}

// TestEntryKeysRefuseForgeries: with cache_key, through PostgreSQL and
// Redis, in both modes: lookups hit on entries wtcache sealed, while every
// kind of entry someone with write access to Redis could put there (one
// byte changed, another row's entry copied over, a well-formed plain image
// of the very row with other values, an entry sealed under another
// secret, truncated) is a miss counted as unauthenticated_entry and the
// lookup returns PostgreSQL's row. A handle rotated to a new secret still
// hits on the old one's entries. Without the check in open, the forged
// plain image is served.
func TestEntryKeysRefuseForgeries(t *testing.T) {
	e := needServices(t)
	p := e.plain(t)
	ctx := context.Background()
	for _, mode := range []string{"authenticate", "encrypt"} {
		t.Run(mode, func(t *testing.T) {
			table := fmt.Sprintf("wt_seal_%d", time.Now().UnixNano()%1e9)
			mustExec(t, p, fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL)`, table))
			t.Cleanup(func() { mustExec(t, p, "DROP TABLE IF EXISTS "+table) })
			mustExec(t, p, fmt.Sprintf(`INSERT INTO %s VALUES (1, 'owner one', 100), (2, 'owner two', 200)`, table))
			prefix := fmt.Sprintf("seal%d", time.Now().UnixNano()%1e9)
			const k1, k2 = "first secret of the application", "second secret of the application"
			db, c := e.open(t, prefix, "cache_key="+k1, "cache_key_mode="+mode)
			plainDB, plainC := e.open(t, prefix) // the same entries, no key
			q := "SELECT id, owner, balance FROM " + table + " WHERE id = $1"
			read := func(db *sql.DB, id int64) string {
				t.Helper()
				var x, bal int64
				var owner string
				if err := db.QueryRowContext(ctx, q, id).Scan(&x, &owner, &bal); err != nil {
					t.Fatal(err)
				}
				return fmt.Sprintf("%d %s %d", x, owner, bal)
			}
			want := map[int64]string{1: "1 owner one 100", 2: "2 owner two 200"}
			for id := range want {
				read(db, id)
			}
			c.settle()
			hits := c.hits.Load()
			for id, w := range want {
				if got := read(db, id); got != w {
					t.Fatalf("row %d: %q, want %q", id, got, w)
				}
			}
			if c.hits.Load() != hits+2 {
				t.Fatalf("sealed entries not served: %d hits, want %d", c.hits.Load()-hits, 2)
			}
			imgKey := func(id int64) string {
				keys, _ := e.rdb.Keys(ctx, "{"+prefix+":*"+table+"}:v:"+fmt.Sprint(id)).Result()
				if len(keys) != 1 {
					t.Fatalf("image key of row %d: %v", id, keys)
				}
				return keys[0]
			}
			entry := func(id int64) (gen, img string) {
				v, err := e.rdb.Get(ctx, imgKey(id)).Result()
				if err != nil {
					t.Fatal(err)
				}
				gen, img, _ = strings.Cut(v, " ")
				return gen, img
			}
			gen1, sealed1 := entry(1)
			_, sealed2 := entry(2)
			if mode == "encrypt" && strings.Contains(sealed1, "owner one") {
				t.Fatal("the encrypted entry holds a column in clear")
			}
			// A well-formed plain image of row 1 with another balance, as a
			// handle without the key would store it: written by the keyless
			// handle after a change made behind both handles' backs.
			mustExec(t, p, "UPDATE "+table+" SET balance = 999 WHERE id = 1")
			_ = e.rdb.Del(ctx, imgKey(1))
			if got := read(plainDB, 1); got != "1 owner one 999" {
				t.Fatal(got)
			}
			plainC.settle()
			_, forgedPlain := entry(1)
			mustExec(t, p, "UPDATE "+table+" SET balance = 100 WHERE id = 1")
			stranger, _ := newSealer(map[string]EntryMode{"authenticate": EntryAuthenticate, "encrypt": EntryEncrypt}[mode], []byte("an attacker's own secret key"))
			flipped := []byte(sealed1)
			flipped[len(flipped)/2] ^= 1
			for _, f := range []struct{ name, img string }{
				{"a byte changed", string(flipped)},
				{"row 2's entry copied over", sealed2},
				{"a plain image of the row", forgedPlain},
				{"sealed under another secret", string(stranger.seal(rowKey(imgKey(1)[:strings.Index(imgKey(1), "}")+1], []string{"1"}), []byte(forgedPlain)))},
				{"truncated", sealed1[:len(sealed1)-3]},
				// The layout of a sealed entry around other values, with a
				// made-up tag (or nonce): served if the tag went unchecked.
				{"other values in the sealed layout", sealed1[:1+sealIDLen] + forgedPlain + strings.Repeat("\x00", sealTagLen)},
			} {
				if err := e.rdb.Set(ctx, imgKey(1), gen1+" "+f.img, time.Minute).Err(); err != nil {
					t.Fatal(err)
				}
				unauthentic := func() int64 { _, m := c.reasons.snapshot(); return m[missUnauthentic] }
				before := unauthentic()
				if got := read(db, 1); got != want[1] {
					t.Errorf("%s: served %q, want PostgreSQL's %q", f.name, got, want[1])
				}
				if unauthentic() != before+1 {
					t.Errorf("%s: not counted as unauthenticated_entry", f.name)
				}
				c.settle()
			}
			// The fill after the last forgery stored a sealed entry again.
			hits = c.hits.Load()
			if got := read(db, 1); got != want[1] || c.hits.Load() != hits+1 {
				t.Errorf("after the forgeries: %q, %d hits", got, c.hits.Load()-hits)
			}

			// Rotation: k2 current, k1 previous, same entries.
			rot, rc := e.open(t, prefix, "cache_key="+k2, "cache_key_old="+k1, "cache_key_mode="+mode)
			hits = rc.hits.Load()
			for id, w := range want {
				if got := read(rot, id); got != w {
					t.Errorf("rotated handle, row %d: %q", id, got)
				}
			}
			if rc.hits.Load() != hits+2 {
				t.Errorf("the rotated handle did not hit on entries of the previous secret (%d hits)", rc.hits.Load()-hits)
			}
		})
	}
}

// TestEntryKeyParameters: the entry-key parameters are checked before
// anything is opened, and no error shows a secret.
func TestEntryKeyParameters(t *testing.T) {
	const secret = "s3cret-value-nobody-may-see-0123"
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	one := write("one", secret+"\n")
	three := write("three", secret+"\n"+secret+"\n"+secret+"\n")
	emptyFirst := write("empty", "\n"+secret+"\n")
	base := "postgres://u@h/db?cache_redis=redis://127.0.0.1:1/0"
	for _, tc := range []struct {
		extra string
		ok    bool
		want  string
	}{
		{"&cache_key=" + secret, true, ""},
		{"&cache_key=" + secret + "&cache_key_mode=encrypt", true, ""},
		{"&cache_key=" + secret + "&cache_key_old=" + secret + "X", true, ""},
		{"&cache_key_file=" + one, true, ""},
		{"&cache_key=short", false, "at least 16"},
		{"&cache_key_old=" + secret, false, "cache_key_old without cache_key"},
		{"&cache_key_mode=encrypt", false, "cache_key_mode without cache_key"},
		{"&cache_key=" + secret + "&cache_key_mode=rot13", false, "neither authenticate nor encrypt"},
		{"&cache_key_file=" + one + "&cache_key=" + secret, false, "one way"},
		{"&cache_key_file=" + three, false, "one line"},
		{"&cache_key_file=" + emptyFirst, false, "first line is empty"},
		{"&cache_key_file=" + filepath.Join(dir, "absent"), false, "cannot read"},
		{"&cache_key=", false, "empty"},
	} {
		c, err := (&wtDriver{}).openConnector(base + tc.extra)
		if c != nil {
			_ = c.Close()
		}
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.extra, err)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.extra, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the secret: %v", tc.extra, err)
		}
	}
	c, err := (&wtDriver{opts: []Option{WithEntryKeys(EntryKeys{Mode: EntryEncrypt, Current: []byte(secret)})}}).openConnector(base)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.cfg.seal == nil || c.cfg.seal.mode != EntryEncrypt {
		t.Fatalf("WithEntryKeys: sealer %+v", c.cfg.seal)
	}
}

// BenchmarkSealOpen: what opening an entry adds to decoding it, for a
// typical account row (the decode memo cold), in one loop: plain decode,
// then open+decode under each mode. Reports ns per entry.
func BenchmarkSealOpen(b *testing.B) {
	cols := []rowcodec.Column{{Name: "id", TypeOID: 20, DatabaseType: "INT8", ScanType: reflect.TypeOf(int64(0))}, {Name: "owner", TypeOID: 25, DatabaseType: "TEXT", ScanType: reflect.TypeOf("")}, {Name: "balance", TypeOID: 1700, DatabaseType: "NUMERIC", ScanType: reflect.TypeOf("")}, {Name: "updated_at", TypeOID: 1184, DatabaseType: "TIMESTAMPTZ", ScanType: reflect.TypeOf(time.Time{})}}
	img, err := rowcodec.Encode(nil, cols, []any{int64(42), "owner 42", "420", time.Unix(1700000000, 0).UTC()})
	if err != nil {
		b.Fatal(err)
	}
	const key = "{wtc:bank:public.accounts}:r:42"
	secret := []byte("a benchmark's entry key, 32 byte")
	auth, _ := newSealer(EntryAuthenticate, secret)
	enc, _ := newSealer(EntryEncrypt, secret)
	entries := []string{string(img), string(auth.seal(key, img)), string(enc.seal(key, img))}
	sealers := []*sealer{nil, auth, enc}
	var tot [3]time.Duration
	n := 0
	for b.Loop() {
		for i := range sealers {
			t0 := time.Now()
			for range 100 {
				plain, err := sealers[i].open(key, entries[i])
				if err != nil {
					b.Fatal(err)
				}
				if _, err := rowcodec.DecodeString(plain); err != nil {
					b.Fatal(err)
				}
			}
			tot[i] += time.Since(t0)
		}
		n += 100
	}
	b.ReportMetric(float64(tot[0])/float64(n), "decode-ns")
	b.ReportMetric(float64(tot[1]-tot[0])/float64(n), "authenticate-extra-ns")
	b.ReportMetric(float64(tot[2]-tot[0])/float64(n), "encrypt-extra-ns")
}

// TestOpenDBPanicShowsNoSecret: OpenDB panics only where NewConnector
// fails; with a secret that is too short, the panic names its length, not
// the secret.
func TestOpenDBPanicShowsNoSecret(t *testing.T) {
	const secret = "Mk9-short"
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("OpenDB accepted a 9-byte entry key")
		}
		if msg := fmt.Sprint(r); strings.Contains(msg, secret) || !strings.Contains(msg, "9 bytes") {
			t.Fatalf("the panic: %s", msg)
		}
	}()
	OpenDB(dsnConnector{dsn: "unused", drv: &wtDriver{}}, redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}),
		WithEntryKeys(EntryKeys{Current: []byte(secret)}))
}
