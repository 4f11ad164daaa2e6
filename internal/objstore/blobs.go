package objstore

import (
	"context"
	"fmt"
	"io"
)

// Blobs stores whole payloads as objects of one bucket under full keys, e.g. the format's external
// "PREFIX/_bigFiles/NAME" payloads. Its Put and Open match desformat.ExternalStore; OpenReaderAt adds
// random access.
type Blobs struct {
	store  *Store
	bucket string
	opts   UploadOptions
}

// Blobs returns payload helpers for bucket. opts apply to every Put (set IfNoneMatch to never overwrite).
func (s *Store) Blobs(bucket string, opts UploadOptions) *Blobs {
	return &Blobs{store: s, bucket: bucket, opts: opts}
}

// Put streams exactly size bytes from r to key with bounded memory (one PUT when small, multipart
// otherwise). If r holds fewer or more bytes, nothing is stored and the error says so.
func (b *Blobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if size < 0 {
		return fmt.Errorf("objstore: put s3://%s/%s: negative size %d", b.bucket, key, size)
	}
	u := b.store.NewUploader(ctx, b.bucket, key, b.opts)
	// Read one byte past size to notice a reader longer than announced.
	n, err := io.Copy(u, io.LimitReader(r, size+1))
	if err == nil && n != size {
		err = fmt.Errorf("objstore: put s3://%s/%s: reader holds %s bytes, want %d", b.bucket, key, sizeDesc(n, size), size)
	}
	if err != nil {
		if aerr := u.Abort(context.WithoutCancel(ctx)); aerr != nil {
			return fmt.Errorf("%w (and abort failed: %w)", err, aerr)
		}
		return err
	}
	_, err = u.Complete()
	return err
}

func sizeDesc(n, size int64) string {
	if n > size {
		return fmt.Sprintf("more than %d", size)
	}
	return fmt.Sprint(n)
}

// Open streams the whole payload and returns its size. The caller closes the body.
func (b *Blobs) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	body, info, err := b.store.Get(ctx, b.bucket, key, nil)
	if err != nil {
		return nil, 0, err
	}
	return body, info.Size, nil
}

// OpenReaderAt opens the payload for random access with one HEAD.
func (b *Blobs) OpenReaderAt(ctx context.Context, key string) (*ObjectReader, int64, error) {
	r, _, err := b.store.OpenReaderAt(ctx, b.bucket, key, 0)
	if err != nil {
		return nil, 0, err
	}
	size := r.Size()
	return r, size, nil
}
