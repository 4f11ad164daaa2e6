package connect

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// Redacted replaces a password in messages.
const Redacted = "xxxxx"

// kvPassword finds password=… in a key=value DSN that pgconn cannot parse (a malformed DSN may
// still carry a real password).
var kvPassword = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// urlPassword finds the user info's password in a URL DSN that net/url cannot parse (a bad port, say).
var urlPassword = regexp.MustCompile(`://[^:/@]*:([^@/]*)@`)

// mysqlPassword finds the password of a MySQL DSN (user:password@tcp(host)/db) that the driver cannot
// parse: the password runs to the last @ before the address.
var mysqlPassword = regexp.MustCompile(`^[^:@/]*:(.*)@[^@]*/`)

// Redact removes every form of dsn's password from msg: as written, URL-escaped, and as pgconn
// reads it (which also covers $PGPASSWORD and quoted key=value values), and as a MySQL DSN has it.
func Redact(msg, dsn string) string {
	return redactAll(msg, secretsOf(dsn))
}

func redactAll(msg string, secrets []string) string {
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, Redacted)
	}
	return msg
}

func secretsOf(dsn string) []string {
	var out []string
	add := func(pw string) { out = append(out, passwordForms(pw)...) }
	if cfg, err := pgconn.ParseConfig(dsn); err == nil {
		add(cfg.Password)
	}
	if cfg, err := mysql.ParseDSN(dsn); err == nil {
		add(cfg.Passwd)
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		pw, _ := u.User.Password()
		add(pw)
	}
	for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
		add(m[1])
		add(strings.Trim(m[1], "'"))
	}
	if m := mysqlPassword.FindStringSubmatch(dsn); m != nil {
		add(m[1])
	}
	for _, m := range urlPassword.FindAllStringSubmatch(dsn, -1) {
		add(m[1])
		if pw, err := url.PathUnescape(m[1]); err == nil {
			add(pw)
		}
	}
	return out
}

// passwordForms are the ways pw can appear in a message: as is, and escaped for a URL's query or
// user info (how a URL DSN carries it).
func passwordForms(pw string) []string {
	if pw == "" {
		return nil
	}
	return []string{pw, url.QueryEscape(pw), url.PathEscape(pw), url.UserPassword("", pw).String()[1:]}
}

// redactedError keeps an error's chain (errors.Is still sees context.Canceled or a pgconn error)
// while its text, which logs and status conditions print, never holds the password.
type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string { return redactAll(e.err.Error(), e.secrets) }
func (e *redactedError) Unwrap() error { return e.err }

// GoString keeps %#v from printing the fields, which hold the password.
func (e *redactedError) GoString() string { return e.Error() }

// RedactError wraps err so that its message has dsn's password removed; nil stays nil.
func RedactError(err error, dsn string) error {
	if err == nil {
		return nil
	}
	return &redactedError{err: err, secrets: secretsOf(dsn)}
}
