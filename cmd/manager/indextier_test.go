package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

func TestIndexTierFlags(t *testing.T) {
	for _, env := range []string{"POD_NAMESPACE", "DES_NAMESPACE", "DES_SOURCE", "DES_BUCKET", "DES_ARCHIVE_PREFIXES"} {
		t.Setenv(env, "")
	}
	base := []string{"--bucket=archive", "--archive-prefix=scans"}
	tests := []flagCase{
		{"no tier", nil, ""},
		{"tier with defaults", []string{"--index-cache-redis=127.0.0.1:6379"}, ""},
		{"every setting", []string{"--index-cache-redis=redis.des.svc:6379", "--index-cache-redis-ttl=1h", "--index-cache-redis-max-entry=8Mi",
			"--index-cache-redis-prefix=scans:idx:", "--index-cache-redis-db=3", "--index-cache-redis-timeout=100ms"}, ""},
		{"no port", []string{"--index-cache-redis=127.0.0.1"}, "want host:port"},
		{"zero TTL", []string{"--index-cache-redis=127.0.0.1:6379", "--index-cache-redis-ttl=0s"}, "ttl must be positive"},
		{"empty prefix", []string{"--index-cache-redis=127.0.0.1:6379", "--index-cache-redis-prefix="}, "prefix must not be empty"},
		{"negative db", []string{"--index-cache-redis=127.0.0.1:6379", "--index-cache-redis-db=-1"}, "must not be negative"},
		{"password without tier", []string{"--index-cache-redis-password-file=/secret/pw"}, "needs --index-cache-redis"},
	}
	checkFlagCases(t, base, tests)
	t.Run("values reach the flags", func(t *testing.T) {
		f, err := parseReader(t, append(base, "--index-cache-redis=127.0.0.1:6379", "--index-cache-redis-ttl=1h", "--index-cache-redis-max-entry=8Mi"))
		if err != nil {
			t.Fatal(err)
		}
		if f.indexTier.ttl != time.Hour || f.indexTier.maxEntry != 8<<20 || f.indexTier.prefix != "des:idx:" {
			t.Fatalf("parsed %+v", f.indexTier)
		}
	})
}

func TestIndexTierBuild(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := indexTierFlags{addr: "127.0.0.1:6379", ttl: time.Hour, maxEntry: 1 << 20, prefix: "p:", timeout: time.Second, passwordFile: pw}
	tier, err := f.build(logr.Discard())
	if err != nil || tier == nil {
		t.Fatalf("build: %v, %v", tier, err)
	}
	tier.Close()
	f.passwordFile = filepath.Join(dir, "absent")
	if _, err := f.build(logr.Discard()); err == nil || !strings.Contains(err.Error(), "password-file") {
		t.Fatalf("missing password file: %v", err)
	}
	if tier, err := (&indexTierFlags{}).build(logr.Discard()); tier != nil || err != nil {
		t.Fatalf("no address: %v, %v", tier, err)
	}
}
