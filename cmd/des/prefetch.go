package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Read-ahead of des pack. Workers open and read files ahead of the archive writer, which appends
// them in input order, so the archive is the same whatever the timing. Files travel in chunks of
// consecutive inputs: one hand-off between goroutines per chunk instead of per file, because with
// 4 KiB files waking a goroutine per file cost more CPU (scheduler spinning) than the reads.
const (
	prefetchChunk  = 32 // files per chunk
	prefetchWindow = 8  // chunks loaded but not yet written: at most 256 files ahead
	// prefetchSmallMax: files up to this size are read whole by a worker; larger ones are opened
	// ahead but streamed by the writer, so a big file is never held in memory. A chunk's small
	// files share one buffer, so read-ahead holds at most about (window+workers) × chunk ×
	// smallMax = 48 MiB, and a few MiB for 4 KiB files.
	prefetchSmallMax = 128 << 10
)

// prefetchWorkers: on tmpfs or a warm page cache a read is CPU time in the kernel, so two readers
// per core keep every core busy while one of them also runs the writer.
func prefetchWorkers() int { return max(2, 2*runtime.GOMAXPROCS(0)) }

// loaded is one input ready for the writer: the whole content of a small file, or an open file to
// stream.
type loaded struct {
	data   []byte   // small file: exactly its bytes (in its chunk's buffer)
	stream *os.File // large file: open, positioned at 0; the writer closes it
	size   int64
	err    error
}

// chunk is the loaded files prefetchChunk*index onwards, and the buffer their bytes are in.
type chunk struct {
	files []loaded
	buf   []byte
}

// prefetcher loads chunk c into slots[c%window] ahead of the consumer, which takes files in order
// with next. A credit per slot, taken before a worker claims the next chunk and given back when
// the consumer has written a chunk's last file, keeps workers at most window chunks ahead, so
// slot c%window is free whenever chunk c is loaded and no worker ever blocks on it.
type prefetcher struct {
	files  []packInput
	slots  []chan *chunk
	credit chan struct{}
	bufs   chan []byte
	claim  atomic.Int64 // next chunk to load
	cancel context.CancelFunc
	wg     sync.WaitGroup

	cur *chunk // the chunk next reads from
	pos int    // index of the next file
}

func startPrefetch(files []packInput, workers, window int) *prefetcher {
	ctx, cancel := context.WithCancel(context.Background())
	p := &prefetcher{
		files:  files,
		slots:  make([]chan *chunk, window),
		credit: make(chan struct{}, window),
		bufs:   make(chan []byte, window+workers),
		cancel: cancel,
	}
	for i := range p.slots {
		p.slots[i] = make(chan *chunk, 1)
		p.credit <- struct{}{}
	}
	nChunks := int64((len(files) + prefetchChunk - 1) / prefetchChunk)
	p.wg.Add(workers)
	for range workers {
		go func() {
			defer p.wg.Done()
			for {
				select {
				case <-p.credit:
				case <-ctx.Done():
					return
				}
				c := p.claim.Add(1) - 1
				if c >= nChunks {
					return
				}
				p.slots[c%int64(window)] <- p.loadChunk(int(c))
			}
		}()
	}
	return p
}

func (p *prefetcher) loadChunk(c int) *chunk {
	lo, hi := c*prefetchChunk, min((c+1)*prefetchChunk, len(p.files))
	ch := &chunk{files: make([]loaded, 0, hi-lo), buf: p.buffer()}
	for _, in := range p.files[lo:hi] {
		ch.files = append(ch.files, p.load(in.path, ch))
	}
	return ch
}

// next returns the next file in input order, waiting for its chunk. Its data stays valid until
// the next call.
func (p *prefetcher) next() *loaded {
	i := p.pos % prefetchChunk
	if i == 0 {
		if p.cur != nil {
			p.release(p.cur)
		}
		p.cur = <-p.slots[(p.pos/prefetchChunk)%len(p.slots)]
	}
	p.pos++
	return &p.cur.files[i]
}

// release recycles a written chunk's buffer and frees its slot.
func (p *prefetcher) release(ch *chunk) {
	select {
	case p.bufs <- ch.buf[:0]:
	default:
	}
	p.credit <- struct{}{}
}

// stop ends the workers and closes the files they opened that were not written. The consumer
// calls it once, after its last next.
func (p *prefetcher) stop() {
	p.cancel()
	p.wg.Wait()
	closeStreams := func(ch *chunk, from int) {
		for _, l := range ch.files[from:] {
			if l.stream != nil {
				l.stream.Close()
			}
		}
	}
	if p.cur != nil {
		closeStreams(p.cur, (p.pos-1)%prefetchChunk+1)
	}
	for _, s := range p.slots {
		select {
		case ch := <-s:
			closeStreams(ch, 0)
		default:
		}
	}
}

// buffer returns a recycled chunk buffer, or nil (load grows it).
func (p *prefetcher) buffer() []byte {
	select {
	case b := <-p.bufs:
		return b
	default:
		return nil
	}
}

// load opens and, for a small file, reads path with raw system calls: open, fstat, one read and
// close, against an os.Open that also registers every file with the poller and allocates a
// finalizer. O_NONBLOCK keeps a FIFO swapped in since the walk from blocking the open.
func (p *prefetcher) load(path string, ch *chunk) loaded {
	fd, err := retryEINTR(func() (int, error) { return unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0) })
	if err != nil {
		return loaded{err: &os.PathError{Op: "open", Path: path, Err: err}}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return loaded{err: &os.PathError{Op: "stat", Path: path, Err: err}}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return loaded{err: fmt.Errorf("%s: no longer a regular file", path)}
	}
	if st.Size > prefetchSmallMax {
		return loaded{stream: os.NewFile(uintptr(fd), path), size: st.Size}
	}
	defer unix.Close(fd)
	data, err := readSmall(fd, st.Size, ch.room(st.Size+1))
	if err != nil {
		return loaded{err: fmt.Errorf("%s: %w", path, err)}
	}
	ch.buf = ch.buf[:len(ch.buf)+len(data)]
	return loaded{data: data, size: st.Size}
}

// room returns n bytes after the chunk's data, growing its buffer (to hold a whole chunk of such
// files) when they do not fit. Files already read keep the old buffer alive.
func (ch *chunk) room(n int64) []byte {
	if free := int64(cap(ch.buf) - len(ch.buf)); free < n {
		limit := int64(prefetchChunk * (prefetchSmallMax + 1)) // n ≤ smallMax+1, so n fits
		ch.buf = make([]byte, 0, min(max(int64(2*cap(ch.buf)), n*int64(prefetchChunk-len(ch.files))), limit))
	}
	return ch.buf[len(ch.buf) : int64(len(ch.buf))+n]
}

// errFileChanged is what a file that grew or shrank since its fstat reports.
var errFileChanged = errors.New("file changed size while being read")

// readSmall reads a file fstat said holds size bytes into buf (size+1 long). The extra byte makes
// one read call enough: a regular file returns less than asked only at its end, so size bytes
// from a size+1 read is the whole file (GNU tar trusts a read of st_size bytes the same way), and
// size+1 bytes means it grew.
func readSmall(fd int, size int64, buf []byte) ([]byte, error) {
	var got int64
	for got <= size {
		n, err := retryEINTR(func() (int, error) { return unix.Read(fd, buf[got:]) })
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			break
		}
		got += int64(n)
		if got == size {
			break
		}
	}
	if got != size {
		return nil, fmt.Errorf("%w (%d bytes at stat, %d read)", errFileChanged, size, got)
	}
	return buf[:size], nil
}

func retryEINTR(op func() (int, error)) (int, error) {
	for {
		n, err := op()
		if !errors.Is(err, unix.EINTR) {
			return n, err
		}
	}
}

// reader returns the file's payload as a reader for desformat.Writer.Add; br is reset for each
// small file to save an allocation per file.
func (l *loaded) reader(br *bytes.Reader) io.Reader {
	if l.stream != nil {
		return l.stream
	}
	br.Reset(l.data)
	return br
}
