package connect_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/connect"
	"github.com/datavision/des/test/testworld"
)

func TestRedact(t *testing.T) {
	cases := []struct {
		name, dsn, msg, secret string
	}{
		{"URL", "postgres://u:hunter2@h/db", "failed to connect to postgres://u:hunter2@h/db", "hunter2"},
		{"URL escaped", "postgres://u:p%40ss%2Fw0rd@h/db", "dial postgres://u:p%40ss%2Fw0rd@h/db: refused (p@ss/w0rd)", "p@ss/w0rd"},
		{"key=value", "host=h user=u password=s3cr3t dbname=db", "bad: password=s3cr3t", "s3cr3t"},
		{"key=value quoted", "host=h password='sp ace pw' dbname=db", "auth failed for 'sp ace pw'", "sp ace pw"},
		{"malformed key=value keeps redacting", "host=h password=n0parse port=x", "echo: password=n0parse port=x", "n0parse"},
		{"malformed URL keeps redacting", "postgres://u:leak3d@h:notaport/db", "parse postgres://u:leak3d@h:notaport/db", "leak3d"},
		{"MySQL", "u:my5ql@tcp(h:3306)/db", "connect u:my5ql@tcp(h:3306)/db: refused", "my5ql"},
		{"MySQL password with @", "u:p@ss@tcp(h:3306)/db?tls=true", "dial u:p@ss@tcp(h:3306)/db: refused (p@ss)", "p@ss"},
		{"malformed MySQL keeps redacting", "u:br0ken@tcp(h:3306/db", "parse u:br0ken@tcp(h:3306/db", "br0ken"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := connect.Redact(tc.msg, tc.dsn)
			if strings.Contains(got, tc.secret) || strings.Contains(got, url.QueryEscape(tc.secret)) {
				t.Fatalf("Redact left the password in %q", got)
			}
			if !strings.Contains(got, connect.Redacted) {
				t.Fatalf("Redact(%q) = %q, want the password replaced by %s", tc.msg, got, connect.Redacted)
			}
		})
	}
	if got := connect.Redact("no secret here", "postgres://u@h/db"); got != "no secret here" {
		t.Fatalf("a DSN without password changed the message: %q", got)
	}
}

// TestRedactRealConnectErrors makes the test world's PostgreSQL refuse connections whose error text
// quotes the password: the server authenticates by trust, so the password is also used as the role or
// the database name, which the server and pgx do echo. Without redaction every case would leak.
func TestRedactRealConnectErrors(t *testing.T) {
	pg := testworld.PG(t)
	hp := net.JoinHostPort("127.0.0.1", fmt.Sprint(pg.Port))
	host, port, _ := net.SplitHostPort(hp)
	my := net.JoinHostPort("127.0.0.1", fmt.Sprint(testworld.Maria(t).Port))
	cases := []struct {
		name   string
		driver catalog.Driver
		dsn    string
		secret string
	}{
		{"URL: password as role", catalog.Postgres, "postgres://Rol3Pw:Rol3Pw@" + hp + "/postgres?sslmode=disable", "Rol3Pw"},
		{"URL: password as database", catalog.Postgres, "postgres://postgres:Db9Pw@" + hp + "/Db9Pw?sslmode=disable", "Db9Pw"},
		{"key=value: password as role", catalog.Postgres, "host=" + host + " port=" + port + " user=Kv7Pw password=Kv7Pw dbname=postgres sslmode=disable", "Kv7Pw"},
		{"key=value: password as database", catalog.Postgres, "host=" + host + " port=" + port + " user=postgres password=KvDb5 dbname=KvDb5 sslmode=disable", "KvDb5"},
		{"MySQL: password as user", catalog.MySQL, "My5Pw:My5Pw@tcp(" + my + ")/", "My5Pw"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			pool, err := connect.Open(ctx, tc.driver, tc.dsn, connect.PoolOptions{ConnectTimeout: 5 * time.Second})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer pool.Close()
			err = pool.Ping(ctx)
			if err == nil {
				t.Fatal("Ping succeeded, want a refused connection")
			}
			if raw := fmt.Sprint(errorsUnwrapped(err)); !strings.Contains(raw, tc.secret) {
				t.Fatalf("the driver's own error %q does not quote the password: the case proves nothing", raw)
			}
			for _, text := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err),
				fmt.Errorf("wrapped: %w", err).Error()} {
				if strings.Contains(text, tc.secret) {
					t.Fatalf("error text leaks the password: %s", text)
				}
			}
		})
	}
}

// errorsUnwrapped is the driver's error under the redaction wrapper.
func errorsUnwrapped(err error) error {
	if u, ok := err.(interface{ Unwrap() error }); ok {
		return u.Unwrap()
	}
	return err
}

func TestOpenInvalidDSNNeverEchoes(t *testing.T) {
	for _, c := range []struct {
		driver catalog.Driver
		dsn    string
	}{
		{catalog.Postgres, "postgres://u:Inv4lid@h:notaport/db"},
		{catalog.Postgres, "host=h password=Inv4lid port=notaport"},
		{catalog.MySQL, "u:Inv4lid@tcp(h:3306"},
		{catalog.MySQL, "postgres://u:Inv4lid@h/db"},
	} {
		dsn := c.dsn
		_, err := connect.Open(context.Background(), c.driver, dsn, connect.PoolOptions{})
		if !errors.Is(err, connect.ErrInvalidDSN) {
			t.Fatalf("Open(%q) error = %v, want ErrInvalidDSN", connect.Redact(dsn, dsn), err)
		}
		if strings.Contains(err.Error(), "Inv4lid") {
			t.Fatalf("error leaks the password: %v", err)
		}
	}
}
