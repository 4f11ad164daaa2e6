package packer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
)

// item is one claimed row on its way to the writer.
type item struct {
	row    catalog.Row
	data   []byte // the payload, when fetched ahead
	etag   string // the ETag of the GET that fetched data (recorded in the row: source deletion checks it)
	stream bool   // not fetched ahead: the writer streams it when its turn comes
	cost   int64  // bytes held in the prefetch budget until the writer is done with it
	err    error  // why the row cannot be written
	done   chan struct{}
}

// sourceError is a row that cannot be packed; its text goes into the row's des_error.
type sourceError struct {
	kind string // missing, unreadable, inconsistent (size) or invalid (name)
	row  catalog.Row
	err  error
}

func (e *sourceError) Error() string {
	return fmt.Sprintf("source object s3://%s/%s (%s) is %s: %v", e.row.Bucket, e.row.Key, e.row.Name, e.kind, e.err)
}

func (e *sourceError) Unwrap() error { return e.err }

func readErr(row catalog.Row, err error) error {
	kind := "unreadable"
	if errors.Is(err, objstore.ErrNotFound) {
		kind = "missing"
	}
	return &sourceError{kind: kind, row: row, err: err}
}

// fetchAhead turns rows into items for the writer, in the same order, handing each small object to a
// pool of Window fetchers at once. The window (out's capacity) bounds the items in flight and the
// prefetch budget their bytes. Every item is handed over, even after ctx ends, so the writer side can
// return every budget. The fetchers are long-lived: a goroutine per object would grow a fresh stack
// through the SDK's deep call chain for every one.
func (p *Packer) fetchAhead(ctx context.Context, rows <-chan catalog.Row, out chan<- *item, wg *sync.WaitGroup) {
	defer close(out)
	jobs := make(chan *item, p.tune.Window)
	defer close(jobs)
	for range p.tune.Window {
		wg.Go(func() {
			for it := range jobs {
				p.fetch(ctx, it)
			}
		})
	}
	for row := range rows {
		it := &item{row: row, done: make(chan struct{})}
		switch {
		case desformat.ValidateName(row.Name) != nil:
			it.err = &sourceError{kind: "invalid", row: row, err: desformat.ValidateName(row.Name)}
			close(it.done)
		case row.Size >= p.lim.bigFileThreshold || row.Size > p.tune.PrefetchBytes/4:
			it.stream = true
			close(it.done)
		default:
			if err := p.budget.Acquire(ctx, row.Size); err != nil {
				it.err = err
				close(it.done)
				break
			}
			it.cost = row.Size
			jobs <- it
		}
		out <- it
	}
}

func (p *Packer) fetch(ctx context.Context, it *item) {
	defer close(it.done)
	start := time.Now()
	it.err = p.retrySource(ctx, func() error {
		var err error
		it.data, it.etag, err = p.fetchObject(ctx, it.row)
		return err
	})
	p.d.Metrics.FetchSeconds.Observe(time.Since(start).Seconds())
}

// sourceBackoff spaces the packer's own tries of a source object. The SDK already repeats a request
// that fails before its answer (5xx, throttling, a refused connection); these tries also cover a body
// cut in the middle (a reset) and an outage a little longer than the SDK's attempts: three tries, 0.5 s
// and then 1.5 s apart, before a row is marked failed (and retried much later, see catalog.RetryFailed).
var sourceBackoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 3, Jitter: 0.2, Steps: 3}

// retrySource runs op, a read of one source object, again while it fails for a transient cause.
func (p *Packer) retrySource(ctx context.Context, op func() error) error {
	return retry.OnError(sourceBackoff, func(err error) bool {
		if ctx.Err() != nil || !transientSourceError(err) {
			return false
		}
		p.d.Metrics.Errors.WithLabelValues("fetch-retry").Inc()
		return true
	}, op)
}

// transientSourceError is a read that failed for a cause that may pass: not a missing, inconsistent
// or invalid object, and not a refusal the store would repeat (see objstore.IsPermanent).
func transientSourceError(err error) bool {
	var se *sourceError
	return errors.As(err, &se) && se.kind == "unreadable" && !objstore.IsPermanent(err)
}

// fetchObject reads a whole source object of the size the catalog gives, and the ETag it was read at.
func (p *Packer) fetchObject(ctx context.Context, row catalog.Row) ([]byte, string, error) {
	body, etag, err := p.open(ctx, row)
	if err != nil {
		return nil, "", err
	}
	defer body.Close()
	buf := getBuffer(row.Size)
	if _, err := io.ReadFull(body, buf); err != nil {
		putBuffer(buf)
		return nil, "", readErr(row, err)
	}
	// Read on to the end: net/http reuses a connection only once its body hit EOF, and a longer body
	// is not the object the row describes.
	var probe [1]byte
	switch _, err := io.ReadFull(body, probe[:]); {
	case err == nil:
		putBuffer(buf)
		return nil, "", &sourceError{kind: "inconsistent", row: row, err: fmt.Errorf("the object is longer than %d bytes", row.Size)}
	case err != io.EOF:
		putBuffer(buf)
		return nil, "", readErr(row, err)
	}
	return buf, etag, nil
}

// open starts the GET of a source object and checks its size against the catalog's: a different
// size means the object is not the one the row describes. It returns the ETag the GET answered: the
// commit records it, so that source deletion deletes only the version that was packed.
func (p *Packer) open(ctx context.Context, row catalog.Row) (io.ReadCloser, string, error) {
	body, info, err := p.d.Source.Get(ctx, row.Bucket, row.Key, nil)
	if err != nil {
		if ctx.Err() == nil {
			p.d.Metrics.Errors.WithLabelValues("fetch").Inc()
		}
		return nil, "", readErr(row, err)
	}
	if info.Size != row.Size {
		body.Close()
		return nil, "", &sourceError{kind: "inconsistent", row: row,
			err: fmt.Errorf("size mismatch: the catalog says %d bytes, the object has %d", row.Size, info.Size)}
	}
	return body, info.ETag, nil
}

// Fetched objects of up to smallBuffer bytes get recycled buffers: most source objects are a few KiB,
// and allocating each anew costs the garbage collector more than the copy. The buffers come in size
// classes, so that the up to reorderSlack×Window small objects waiting for the writer do not each
// hold 64 KiB.
const smallBuffer = 64 << 10

var bufferClasses = [...]int{4 << 10, 16 << 10, smallBuffer}

var smallBuffers [len(bufferClasses)]sync.Pool

func init() {
	for i, size := range bufferClasses {
		smallBuffers[i].New = func() any { b := make([]byte, size); return &b }
	}
}

func getBuffer(size int64) []byte {
	for i, c := range bufferClasses {
		if size <= int64(c) {
			return (*smallBuffers[i].Get().(*[]byte))[:size]
		}
	}
	return make([]byte, size)
}

// putBuffer recycles a buffer from getBuffer once nothing refers to it any more.
func putBuffer(b []byte) {
	for i, c := range bufferClasses {
		if cap(b) == c {
			b = b[:c]
			smallBuffers[i].Put(&b)
			return
		}
	}
}
