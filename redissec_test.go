package wtcache

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRedisSecurityParameters: the cache_redis_* parameters are checked
// before anything is opened, and their errors name files, never contents.
func TestRedisSecurityParameters(t *testing.T) {
	const secret = "KeYsEcReT42"
	dir := t.TempDir()
	garbage := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(garbage, []byte("-----BEGIN PRIVATE KEY-----\n"+secret+"\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "postgres://app@127.0.0.1:1/db?cache_redis="
	cases := map[string]string{
		"TLS files without rediss":       base + url.QueryEscape("redis://127.0.0.1:1/0") + "&cache_redis_ca=" + garbage,
		"a CA that is no certificate":    base + url.QueryEscape("rediss://127.0.0.1:1/0") + "&cache_redis_ca=" + garbage,
		"a key that does not parse":      base + url.QueryEscape("rediss://127.0.0.1:1/0") + "&cache_redis_cert=" + garbage + "&cache_redis_key=" + garbage,
		"a certificate without its key":  base + url.QueryEscape("rediss://127.0.0.1:1/0") + "&cache_redis_cert=" + garbage,
		"a CA file that is not there":    base + url.QueryEscape("rediss://127.0.0.1:1/0") + "&cache_redis_ca=" + filepath.Join(dir, "nope"),
		"two passwords":                  base + url.QueryEscape("redis://u:"+secret+"@127.0.0.1:1/0") + "&cache_redis_password_file=" + pwFile,
		"a file and a variable":          base + url.QueryEscape("redis://127.0.0.1:1/0") + "&cache_redis_password_file=" + pwFile + "&cache_redis_password_env=WT_NOPE",
		"a variable not set":             base + url.QueryEscape("redis://127.0.0.1:1/0") + "&cache_redis_password_env=WT_SURELY_NOT_SET",
		"Sentinel without master_name":   base + url.QueryEscape("redis+sentinel://127.0.0.1:1/0"),
		"Sentinel replica reads":         base + url.QueryEscape("redis+sentinel://127.0.0.1:1/0?master_name=m&replica_only=true"),
		"Sentinel disconnected replicas": base + url.QueryEscape("redis+sentinel://127.0.0.1:1/0?master_name=m&use_disconnected_replicas=true"),
	}
	for name, d := range cases {
		_, err := (&wtDriver{}).openConnector(d)
		if !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows a secret: %v", name, err)
		}
	}
	// The parameters without cache_redis (a client given in Go) are refused.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	if _, err := (&wtDriver{opts: []Option{WithRedis(rdb)}}).openConnector("postgres://app@127.0.0.1:1/db?cache_redis_ca=" + garbage); !errors.Is(err, ErrInvalidParameter) {
		t.Errorf("cache_redis_ca without cache_redis: %v", err)
	}
	// A password from a file reaches the client and is redacted.
	c, err := (&wtDriver{}).openConnector(base + url.QueryEscape("redis://u@127.0.0.1:1/0") + "&cache_redis_password_file=" + pwFile)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.cfg.redis.(*redis.Client).Options().Password; got != secret {
		t.Errorf("password from the file: %q", got)
	}
	if c.redact("x "+secret) != "x xxxxx" || strings.Contains(c.redisName(), secret) {
		t.Errorf("the file's password is not redacted: %q %q", c.redact(secret), c.redisName())
	}
	t.Setenv("WT_TEST_REDIS_PW", secret)
	c2, err := (&wtDriver{}).openConnector(base + url.QueryEscape("redis://u@127.0.0.1:1/0") + "&cache_redis_password_env=WT_TEST_REDIS_PW")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := c2.cfg.redis.(*redis.Client).Options().Password; got != secret {
		t.Errorf("password from the variable: %q", got)
	}
	// A failover URL's password in the query is not shown.
	c3, err := (&wtDriver{}).openConnector(base + url.QueryEscape("redis+sentinel://127.0.0.1:1/0?master_name=m&password="+secret))
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if strings.Contains(c3.redisName(), secret) {
		t.Errorf("the failover URL's password shows: %s", c3.redisName())
	}
}

// TestRedisWeakerReplacementRefused: a cache_redis in the DSN may not
// replace a client given through the Go API by a weaker one.
func TestRedisWeakerReplacementRefused(t *testing.T) {
	strong := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", Password: "p", TLSConfig: &tls12})
	defer strong.Close()
	plain := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer plain.Close()
	d := func(ru string) string { return "postgres://app@127.0.0.1:1/db?cache_redis=" + url.QueryEscape(ru) }
	for ru, wantErr := range map[string]bool{
		"redis://127.0.0.1:1/0":                       true, // no TLS
		"rediss://127.0.0.1:1/0":                      true, // no password
		"rediss://u:p@127.0.0.1:1/0?skip_verify=true": true, // no verification (cache_redis_insecure=true below)
		"rediss://u:p@127.0.0.1:1/0":                  false,
	} {
		c, err := (&wtDriver{opts: []Option{WithRedis(strong)}}).openConnector(d(ru) + "&cache_redis_insecure=true")
		if got := errors.Is(err, ErrInvalidParameter); got != wantErr {
			t.Errorf("%s over a TLS client with a password: %v", ru, err)
		}
		if c != nil {
			c.Close()
		}
	}
	c, err := (&wtDriver{opts: []Option{WithRedis(plain)}}).openConnector(d("redis://127.0.0.1:1/0"))
	if err != nil {
		t.Errorf("a plain client replaced by a plain one: %v", err)
	} else {
		c.Close()
	}
}

// TestRedisTLSFiles: against a Redis that speaks only TLS and asks for a
// client certificate, with a private CA and a server certificate for a name
// that is not its address: the CA, the client certificate and the server
// name all given, wtcache caches; without any one of them the first
// connection's check fails.
func TestRedisTLSFiles(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	dir := t.TempDir()
	ca, caKey := makeCA(t)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	srv, srvKey := makeLeaf(t, ca, caKey, "wtcache-redis.test", x509.ExtKeyUsageServerAuth)
	writePEM(t, filepath.Join(dir, "server.pem"), "CERTIFICATE", srv)
	writePEM(t, filepath.Join(dir, "server.key"), "PRIVATE KEY", srvKey)
	cli, cliKey := makeLeaf(t, ca, caKey, "wtcache-client", x509.ExtKeyUsageClientAuth)
	writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", cli)
	writePEM(t, filepath.Join(dir, "client.key"), "PRIVATE KEY", cliKey)
	port := freePort(t)
	startRedis(t, "--port", "0", "--tls-port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--tls-cert-file", filepath.Join(dir, "server.pem"), "--tls-key-file", filepath.Join(dir, "server.key"),
		"--tls-ca-cert-file", filepath.Join(dir, "ca.pem"), "--tls-auth-clients", "yes")
	ru := "rediss://127.0.0.1:" + port + "/0"
	all := []string{"cache_redis_ca=" + filepath.Join(dir, "ca.pem"), "cache_redis_cert=" + filepath.Join(dir, "client.pem"),
		"cache_redis_key=" + filepath.Join(dir, "client.key"), "cache_redis_servername=wtcache-redis.test", "cache_check=on"}
	e2 := e
	e2.redisURL = ru
	db, c := e2.open(t, "", all...)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	warm(t, db, c, 1)
	for name, skip := range map[string][]int{"the CA": {0}, "the client certificate": {1, 2}, "the server name": {3}} {
		var extra []string
		for j, a := range all {
			if !slices.Contains(skip, j) {
				extra = append(extra, a)
			}
		}
		db, _ := e2.open(t, "", extra...)
		if err := db.Ping(); !errors.Is(err, ErrCacheCheck) {
			t.Errorf("without %s: %v", name, err)
		}
	}
}

// TestRedisSentinel: a Sentinel URL (redis+sentinel://sentinel/db?master_name=)
// finds the master through Sentinel, and wtcache caches through it.
func TestRedisSentinel(t *testing.T) {
	e := needServices(t)
	setupAccounts(t, e)
	dir := t.TempDir()
	port := freePort(t)
	host, mport, _ := net.SplitHostPort(e.rdb.Options().Addr)
	conf := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor wtm %s %s 1\n", port, dir, host, mport)), 0o600); err != nil {
		t.Fatal(err)
	}
	startRedis(t, conf, "--sentinel")
	u, _ := url.Parse(e.redisURL)
	e2 := e
	e2.redisURL = "redis+sentinel://127.0.0.1:" + port + u.Path + "?master_name=wtm"
	db, c := e2.open(t, "", "cache_check=on", "cache_local=on", "cache_local_tables=wt_accounts")
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	warm(t, db, c, 1)
	waitNearServing(t, c)
	nearWarm(t, db, c, 1)
}

var tls12 = tls.Config{MinVersion: tls.VersionTLS12}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

// startRedis runs redis-server with args until the test ends, and waits
// until it accepts connections.
func startRedis(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("redis-server", args...)
	out, _ := os.Create(filepath.Join(t.TempDir(), "redis.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	port := ""
	for i, a := range args {
		if (a == "--tls-port" || a == "--port") && i+1 < len(args) && args[i+1] != "0" {
			port = args[i+1]
		}
	}
	if port == "" { // a config file: its "port" line
		b, _ := os.ReadFile(args[0])
		for _, l := range strings.Split(string(b), "\n") {
			if p, ok := strings.CutPrefix(l, "port "); ok {
				port = p
			}
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(out.Name())
			t.Fatalf("redis-server did not start:\n%s", b)
		}
	}
}

func makeCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wtcache test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return ca, key
}

func makeLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage) (cert, key []byte) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(k)
	return der, kb
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
