package desformat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ExternalStore holds payloads stored outside the archive (v1 "_bigFiles").
// The writer calls Put; the reader calls Open. Keys are slash-separated
// object keys as returned by ExternalKey. An S3 implementation maps keys to
// objects in a bucket; DirStore maps them to files below a directory.
type ExternalStore interface {
	// Put stores exactly size bytes read from r under key.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Open returns the object's content and its size.
	Open(ctx context.Context, key string) (io.ReadCloser, int64, error)
}

// BigFilesDir is the v1 key segment holding external payloads.
const BigFilesDir = "_bigFiles"

// ExternalKey returns the v1 key of an external payload: PREFIX/_bigFiles/NAME
// (or _bigFiles/NAME for an empty prefix).
func ExternalKey(prefix, name string) string {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return BigFilesDir + "/" + name
	}
	return prefix + "/" + BigFilesDir + "/" + name
}

// DirStore is an ExternalStore over a local directory laid out like the
// bucket: key K is the file DIR/K. All access goes through os.Root, so keys
// read from an untrusted archive cannot escape the directory.
type DirStore struct {
	Dir string
}

// NewDirStore returns a store rooted at dir.
func NewDirStore(dir string) *DirStore { return &DirStore{Dir: dir} }

func (s *DirStore) root(create bool) (*os.Root, error) {
	if create {
		if err := os.MkdirAll(s.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("external store: %w", err)
		}
	}
	r, err := os.OpenRoot(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("external store: %w", err)
	}
	return r, nil
}

func checkKey(key string) error {
	if key == "" || !filepath.IsLocal(filepath.FromSlash(key)) || strings.Contains(key, "\\") {
		return fmt.Errorf("external store: invalid key %q", key)
	}
	return nil
}

// Put writes the object via a temporary file renamed into place, so a
// failed Put never leaves a truncated payload under the real key.
func (s *DirStore) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	root, err := s.root(true)
	if err != nil {
		return err
	}
	defer root.Close()
	name := filepath.FromSlash(key)
	if dir := path.Dir(key); dir != "." {
		if err := root.MkdirAll(filepath.FromSlash(dir), 0o755); err != nil {
			return fmt.Errorf("external store: %w", err)
		}
	}
	tmp := name + ".tmp"
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("external store: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			_ = root.Remove(tmp) // best effort: the write already failed, and that error is returned
		}
	}()
	n, err := io.Copy(f, r)
	if err != nil {
		return fmt.Errorf("external store: put %s: %w", key, err)
	}
	if n != size {
		return fmt.Errorf("external store: put %s: %w: got %d bytes, want %d", key, ErrSizeMismatch, n, size)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("external store: put %s: %w", key, err)
	}
	if err := root.Rename(tmp, name); err != nil {
		return fmt.Errorf("external store: put %s: %w", key, err)
	}
	return nil
}

// Open opens the object stored under key.
func (s *DirStore) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	if err := checkKey(key); err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	root, err := s.root(false)
	if err != nil {
		return nil, 0, err
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(key))
	if err != nil {
		return nil, 0, fmt.Errorf("external store: %w", err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("external store: %s: %w", key, err)
	}
	return f, st.Size(), nil
}
