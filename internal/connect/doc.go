// Package connect is the one place where DES turns configuration into connections: it reads the
// catalog DSN (one flag, one environment variable, one default path for every subcommand), opens pgx
// pools under one redaction policy, caches pools and S3 clients for the long-running controller, and
// reads the Secrets that hold DSNs, S3 credentials and CA bundles.
//
// Why one package: these rules used to live in five places that disagreed (three flag names, three
// ways of keeping a password out of an error, a pool cache that never let go of a rotated password,
// and a new S3 client and HTTP transport per reconcile). A rule written once cannot drift.
//
// The redaction policy: no error or log line this package produces contains the DSN or its password.
// Parse errors are replaced by ErrInvalidDSN (pgx may quote the input), and connection errors are
// wrapped so that their text has every form of the password replaced.
package connect
