package connect

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/datavision/des/internal/protocol"
)

const (
	// DSNFlag is the name of the flag that points at a file holding the catalog DSN.
	DSNFlag = "catalog-dsn-file"
	// EnvCatalogDSN holds the catalog DSN itself, for runs outside a pod.
	EnvCatalogDSN = "DES_CATALOG_DSN"
)

// DefaultDSNFile is where packer and marker pods mount the catalog Secret's DSN key.
var DefaultDSNFile = filepath.Join(protocol.CatalogSecretDir, protocol.CatalogDSNFile)

var (
	// ErrNoDSN means neither the flag, the environment nor the default file gave a DSN.
	ErrNoDSN = errors.New("no catalog DSN")
	// ErrEmptyDSN means the DSN source exists but holds only whitespace.
	ErrEmptyDSN = errors.New("catalog DSN is empty")
)

// DSNSource is the --catalog-dsn-file flag; it remembers whether the flag was given, because an
// explicit file beats the environment while the default file does not.
type DSNSource struct {
	file     string
	explicit bool
}

// BindDSN registers --catalog-dsn-file on fs.
func BindDSN(fs *flag.FlagSet) *DSNSource {
	d := &DSNSource{file: DefaultDSNFile}
	fs.Var(d, DSNFlag, "file holding the catalog's PostgreSQL DSN (default "+DefaultDSNFile+
		"); without this flag $"+EnvCatalogDSN+" wins when set")
	return d
}

// String is the file (flag.Value).
func (d *DSNSource) String() string {
	if d == nil {
		return ""
	}
	return d.file
}

// Set records an explicit file (flag.Value).
func (d *DSNSource) Set(v string) error {
	d.file, d.explicit = v, true
	return nil
}

// Read returns the DSN from the flag's file, $DES_CATALOG_DSN or the default file, in that order.
func (d *DSNSource) Read() (string, error) {
	return ReadDSN(d.file, d.explicit, os.Getenv(EnvCatalogDSN))
}

// ReadDSN picks the DSN: the file when it was named explicitly, else env when not blank, else the
// (default) file. Errors name the source, never its content.
func ReadDSN(file string, explicit bool, env string) (string, error) {
	if env = strings.TrimSpace(env); !explicit && env != "" {
		return env, nil
	}
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist) && !explicit:
		return "", fmt.Errorf("%w: pass --%s or set %s (%s does not exist)", ErrNoDSN, DSNFlag, EnvCatalogDSN, file)
	case err != nil:
		return "", fmt.Errorf("read catalog DSN: %w", err)
	}
	dsn := strings.TrimSpace(string(b))
	if dsn == "" {
		return "", fmt.Errorf("%w: %s", ErrEmptyDSN, file)
	}
	return dsn, nil
}
