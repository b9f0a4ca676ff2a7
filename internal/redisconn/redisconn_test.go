package redisconn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keygate/keygate/internal/redistest"
)

func TestRedisConfigErrors(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "empty.pem")
	os.WriteFile(ca, []byte("not a certificate"), 0o600)
	tests := []struct {
		name string
		c    Config
		want []string // substrings of the error
	}{
		{"nothing", Config{}, []string{"URL: not set, nor SentinelAddrs nor ClusterAddrs"}},
		{"two modes", Config{URL: "redis://h", ClusterAddrs: []string{"h:1"}}, []string{"set only one"}},
		{"bad scheme", Config{URL: "http://h"}, []string{`URL: scheme "http"`}},
		{"no host", Config{URL: "redis://"}, []string{"URL: no host"}},
		{"bad db path", Config{URL: "redis://h/x"}, []string{"URL:", "database number"}},
		{"password twice", Config{URL: "redis://u:p@h", Password: "q"}, []string{"Password: also set in URL"}},
		{"user twice", Config{URL: "redis://u:p@h", Username: "v"}, []string{"Username: also set in URL"}},
		{"db twice", Config{URL: "redis://h/2", DB: 3}, []string{"DB: also set in URL"}},
		{"sentinel without master", Config{SentinelAddrs: []string{"h:26379"}}, []string{"SentinelMaster: required"}},
		{"master without sentinels", Config{SentinelMaster: "m"}, []string{"SentinelAddrs: required"}},
		{"bad address", Config{ClusterAddrs: []string{"h:1", "h"}}, []string{`ClusterAddrs[1]: "h" must be host:port`}},
		{"sentinel password alone", Config{URL: "redis://h", SentinelPassword: "p"}, []string{"SentinelPassword: set without SentinelAddrs"}},
		{"db in cluster", Config{ClusterAddrs: []string{"h:1"}, DB: 1}, []string{"DB: must be 0 with ClusterAddrs"}},
		{"negative", Config{URL: "redis://h", DB: -1, PoolSize: -1, ReadTimeout: -time.Second}, []string{"DB: -1", "PoolSize: -1", "ReadTimeout: -1s"}},
		{"CA without TLS", Config{URL: "redis://h", CAFile: ca}, []string{"CAFile: set but TLS is off"}},
		{"skip verify without TLS", Config{URL: "redis://h", InsecureSkipVerify: true}, []string{"InsecureSkipVerify: set but TLS is off"}},
		{"missing CA", Config{URL: "rediss://h", CAFile: "/nonexistent.pem"}, []string{"CAFile:", "no such file"}},
		{"CA not PEM", Config{ClusterAddrs: []string{"h:1"}, TLS: true, CAFile: ca}, []string{"CAFile: no PEM certificate"}},
	}
	for _, tt := range tests {
		err := tt.c.Validate()
		if err == nil {
			t.Errorf("%s: Validate() = nil, want an error", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Validate() = %q, want it to mention %q", tt.name, err, w)
			}
		}
		if _, err := New(tt.c); err == nil {
			t.Errorf("%s: New succeeded, want an error", tt.name)
		}
	}
}

// TestRedisConfigHidesPassword feeds URLs that fail to parse: the error
// must not repeat the password.
func TestRedisConfigHidesPassword(t *testing.T) {
	for _, u := range []string{"redis://user:hunter2@host:port", "redis://user:hunter2@h:1/x", "redis ://user:hunter2@h"} {
		err := Config{URL: u}.Validate()
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Validate(%q) = %v, want an error without the password", u, err)
		}
	}
}

func TestNewRedisClientOptions(t *testing.T) {
	c, err := New(Config{URL: "rediss://kg:pw@redis.example:6380/2", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := c.(*redis.Client).Options()
	if o.Addr != "redis.example:6380" || o.Username != "kg" || o.Password != "pw" || o.DB != 2 {
		t.Errorf("Options = addr %s user %s db %d, want redis.example:6380 kg 2", o.Addr, o.Username, o.DB)
	}
	if o.TLSConfig == nil || o.TLSConfig.ServerName != "redis.example" || !o.TLSConfig.InsecureSkipVerify {
		t.Errorf("TLSConfig = %+v, want ServerName redis.example, InsecureSkipVerify", o.TLSConfig)
	}
	// go-redis turns MaxRetries -1 into 0 (none) when it builds the client.
	if !o.ContextTimeoutEnabled || o.MaxRetries != 0 || o.DialTimeout != defaultDialTimeout || o.ReadTimeout != defaultReadTimeout {
		t.Errorf("Options: ContextTimeoutEnabled %v, MaxRetries %d, DialTimeout %s, ReadTimeout %s; want true, 0, %s, %s",
			o.ContextTimeoutEnabled, o.MaxRetries, o.DialTimeout, o.ReadTimeout, defaultDialTimeout, defaultReadTimeout)
	}

	c, err = New(Config{URL: "redis://h", Username: "kg", Password: "pw", DB: 3, ReadTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o = c.(*redis.Client).Options()
	if o.Username != "kg" || o.Password != "pw" || o.DB != 3 || o.TLSConfig != nil || o.ReadTimeout != time.Second {
		t.Errorf("Options = user %s db %d TLS %v read %s, want kg 3 none 1s", o.Username, o.DB, o.TLSConfig, o.ReadTimeout)
	}

	c, err = New(Config{ClusterAddrs: []string{"a:1", "b:2"}, TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Errorf("ClusterAddrs gave a %T, want *redis.ClusterClient", c)
	}
}

// TestRedisClientACL connects as an ACL user, with credentials in the URL
// or in the fields.
func TestRedisClientACL(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	ctx := context.Background()
	if err := newClient(t, srv).Do(ctx, "ACL", "SETUSER", "kg", "on", ">s3cret", "~*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		c  Config
		ok bool
	}{
		{Config{URL: "redis://kg:s3cret@" + srv.Addr()}, true},
		{Config{URL: srv.URL(), Username: "kg", Password: "s3cret"}, true},
		{Config{URL: "redis://kg:wrong@" + srv.Addr()}, false},
	}
	for i, tt := range tests {
		c, err := New(patiently(tt.c))
		if err != nil {
			t.Fatal(err)
		}
		err = c.Ping(ctx).Err()
		if (err == nil) != tt.ok {
			t.Errorf("config %d: Ping = %v, want ok %v", i, err, tt.ok)
		}
		c.Close()
	}
}

// TestRedisClientTLS talks to a redis-server over TLS with a CA of its
// own: trusted through CAFile, refused without it.
func TestRedisClientTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, cert, key := writeCerts(t, dir)
	tlsPort := freePort(t)
	srv := startRedis(t, "--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", cert, "--tls-key-file", key,
		"--tls-ca-cert-file", ca, "--tls-auth-clients", "no")
	_ = srv
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
	tests := []struct {
		name string
		c    Config
		ok   bool
	}{
		{"rediss with CA", Config{URL: "rediss://" + addr, CAFile: ca}, true},
		{"TLS field with CA", Config{URL: "redis://" + addr, TLS: true, CAFile: ca}, true},
		{"server name", Config{URL: "rediss://" + addr, CAFile: ca, TLSServerName: "localhost"}, true},
		{"skip verify", Config{URL: "rediss://" + addr, InsecureSkipVerify: true}, true},
		{"unknown CA", Config{URL: "rediss://" + addr}, false},
		{"wrong server name", Config{URL: "rediss://" + addr, CAFile: ca, TLSServerName: "other"}, false},
	}
	for _, tt := range tests {
		c, err := New(patiently(tt.c))
		if err != nil {
			t.Fatal(err)
		}
		err = c.Set(context.Background(), "tls-probe", "1", time.Minute).Err()
		if (err == nil) != tt.ok {
			t.Errorf("%s: SET = %v, want ok %v", tt.name, err, tt.ok)
		}
		c.Close()
	}
}

// patiently gives c socket timeouts that a starved machine cannot exceed.
func patiently(c Config) Config {
	c.DialTimeout, c.ReadTimeout, c.WriteTimeout = patient, patient, patient
	return c
}

// writeCerts writes a CA and a server certificate for 127.0.0.1 and
// localhost, and returns the files' names.
func writeCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keygate test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "PRIVATE KEY", keyDER)
}

// TestRedisPoolWaitFollowsDeadline holds the only pooled connection longer
// than a short fixed pool wait would allow: a call whose own deadline is
// long enough waits for the connection and succeeds, instead of failing
// with "connection pool timeout" while Redis answers (which a busy CPU made
// happen to many callers at once, each then decided by the fallback).
func TestRedisPoolWaitFollowsDeadline(t *testing.T) {
	t.Parallel()
	srv := startRedis(t)
	admin := newClient(t, srv)
	c, err := New(Config{URL: srv.URL(), PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	held := make(chan error, 1)
	go func() { held <- c.BLPop(ctx, 0, "wake").Err() }() // holds the one connection until woken
	for !strings.Contains(admin.Info(ctx, "clients").Val(), "blocked_clients:1") {
		time.Sleep(time.Millisecond) // polls for a state, orders nothing
	}
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, patient)
		defer cancel()
		got <- c.Ping(ctx).Err()
	}()
	time.Sleep(600 * time.Millisecond) // the Ping waits longer than the socket timeouts and the old 100ms pool wait
	if err := admin.LPush(ctx, "wake", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := <-held; err != nil {
		t.Fatalf("BLPOP = %v", err)
	}
	if err := <-got; err != nil {
		t.Errorf("Ping waiting for the pool within its deadline = %v, want nil", err)
	}
}

// patient is how long tests that are not about timeouts let a call take,
// so that a machine starved by other jobs does not fail them.
const patient = 5 * time.Second

func startRedis(tb testing.TB, extra ...string) *redistest.Server {
	tb.Helper()
	return redistest.Start(tb, extra...)
}

func freePort(tb testing.TB) int { tb.Helper(); return redistest.FreePort(tb) }

// newClient returns a client of s made by New, closed at cleanup, with
// patient socket timeouts.
func newClient(tb testing.TB, s *redistest.Server) redis.UniversalClient {
	tb.Helper()
	c, err := New(Config{URL: s.URL(), DialTimeout: patient, ReadTimeout: patient, WriteTimeout: patient})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}
