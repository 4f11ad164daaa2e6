package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/v9"

	"github.com/datavision/des/internal/reader"
)

// indexTierFlags are the flags of `manager reader` for the shared index tier in Redis: replicas that
// share one Redis open each container from S3 once.
type indexTierFlags struct {
	addr         string
	ttl          time.Duration
	maxEntry     quantityFlag
	prefix       string
	passwordFile string
	db           int
	timeout      time.Duration
}

func (f *indexTierFlags) register(fs *flag.FlagSet) {
	f.maxEntry = quantityFlag(reader.DefaultIndexTierMaxEntry)
	fs.StringVar(&f.addr, "index-cache-redis", "", "Redis host:port shared by reader replicas as a second index tier; empty: none")
	fs.DurationVar(&f.ttl, "index-cache-redis-ttl", reader.DefaultIndexTierTTL, "lifetime of an entry in the Redis index tier")
	fs.Var(&f.maxEntry, "index-cache-redis-max-entry", "largest container tail (footer, index, meta) shared through Redis (e.g. 64Mi)")
	fs.StringVar(&f.prefix, "index-cache-redis-prefix", reader.DefaultIndexTierPrefix, "prefix of the Redis keys of the index tier")
	fs.StringVar(&f.passwordFile, "index-cache-redis-password-file", "", "file holding the Redis password (e.g. a mounted Secret); never logged")
	fs.IntVar(&f.db, "index-cache-redis-db", 0, "Redis database number of the index tier")
	fs.DurationVar(&f.timeout, "index-cache-redis-timeout", reader.DefaultIndexTierTimeout,
		"bound on one Redis command; a slower or absent Redis is skipped and the read goes to S3")
}

// check refuses settings that would make the tier useless or unsafe.
func (f *indexTierFlags) check() error {
	if f.addr == "" {
		if f.passwordFile != "" {
			return errors.New("--index-cache-redis-password-file needs --index-cache-redis")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(f.addr); err != nil {
		return fmt.Errorf("--index-cache-redis %q: want host:port: %w", f.addr, err)
	}
	switch {
	case f.ttl <= 0:
		return errors.New("--index-cache-redis-ttl must be positive")
	case f.maxEntry <= 0:
		return errors.New("--index-cache-redis-max-entry must be positive")
	case f.timeout <= 0:
		return errors.New("--index-cache-redis-timeout must be positive")
	case f.prefix == "":
		return errors.New("--index-cache-redis-prefix must not be empty: the keys would mix with other data")
	case f.db < 0:
		return errors.New("--index-cache-redis-db must not be negative")
	}
	return nil
}

// build makes the tier, or returns nil when --index-cache-redis is empty. The caller closes it.
func (f *indexTierFlags) build(log logr.Logger) (*reader.RedisIndexTier, error) {
	if f.addr == "" {
		return nil, nil
	}
	var password string
	if f.passwordFile != "" {
		b, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--index-cache-redis-password-file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	redis.SetLogger(reader.RedisLogger{Log: log.WithName("go-redis")})
	tier, err := reader.NewRedisIndexTier(reader.IndexTierOptions{
		Addr: f.addr, Password: password, DB: f.db, Prefix: f.prefix, TTL: f.ttl,
		MaxEntry: int64(f.maxEntry), Timeout: f.timeout, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	log.Info("shared index tier enabled", "redis", f.addr, "db", f.db, "prefix", f.prefix, "ttl", f.ttl.String(),
		"maxEntry", int64(f.maxEntry), "password", f.passwordFile != "")
	return tier, nil
}
