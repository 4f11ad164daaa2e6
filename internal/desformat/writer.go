package desformat

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// DefaultWriteBuffer is the Writer's output buffer size when
// WriterOptions.BufferSize is zero.
const DefaultWriteBuffer = 256 << 10

// WriterOptions configures a Writer. The zero value stores every payload
// inside the archive.
type WriterOptions struct {
	// External receives payloads of ExternalThreshold bytes or more.
	External ExternalStore
	// ExternalThreshold is the size at or above which payloads go to
	// External; 0 disables external storage.
	ExternalThreshold int64
	// ExternalPrefix is the key prefix: keys are PREFIX/_bigFiles/NAME.
	ExternalPrefix string
	// BufferSize is the output buffer size (DefaultWriteBuffer if 0).
	BufferSize int
	// SpillDir, when set, bounds the Writer's memory: the meta objects and index entries go to two
	// temporary files created in this directory (removed again by Close or Abort) instead of staying
	// in memory until Close, and duplicate names are found through a 4-byte slot (ordinal and hash
	// bits) per name, 5 to 11 bytes with the table's slack, and 8 bytes of disk. The archive is byte for byte the one an in-memory Writer produces. The disk needed is about
	// the encoded meta and index: name length plus some 100 bytes per payload. "" keeps everything in
	// memory; use os.TempDir() for the default temporary directory.
	SpillDir string
}

// FileHeader describes a payload handed to Writer.Add.
type FileHeader struct {
	Name string
	// Size is the exact number of bytes the payload reader yields.
	Size int64
	// Meta is an optional JSON object; the writer adds "size", "crc32c"
	// and, for external payloads, "is_external" and "external_key".
	Meta json.RawMessage
}

// Writer streams an archive to an io.Writer. Payload bytes are copied
// straight to the output; the meta objects and the index are kept until
// Close writes them: in memory, or in temporary files with
// WriterOptions.SpillDir. A Writer is not safe for concurrent use.
type Writer struct {
	bw     *bufio.Writer
	opts   WriterOptions
	off    uint64 // bytes emitted so far = absolute offset of the next byte
	store  entryStore
	meta   []byte // the meta object of the payload being added
	src    payloadReader
	err    error // sticky: once output is inconsistent, nothing more is written
	closed bool

	// Running totals, so that Close and Summary need nothing from the store but the bytes to emit.
	count, payloadBytes int64
	metaLen             uint64
	metaCRC             uint32
	last                writerEntry // valid when count > 0
	summary             Summary     // filled by Close
}

type writerEntry struct {
	name       string
	dOff, size uint64
	mOff, mLen uint64
	flags      Flags
	crc        uint32 // the payload's CRC-32C, also patched into its meta
}

// writerOnly hides io.ReaderFrom of the destination, so bufio.Writer.ReadFrom
// always copies into its buffer instead of handing small payloads to the
// destination one write call each.
type writerOnly struct{ io.Writer }

// NewWriter starts an archive on w and writes the header (buffered).
func NewWriter(w io.Writer, opts WriterOptions) (*Writer, error) {
	if opts.ExternalThreshold < 0 {
		return nil, fmt.Errorf("desformat: negative external threshold %d", opts.ExternalThreshold)
	}
	if opts.ExternalThreshold > 0 && opts.External == nil {
		return nil, errors.New("desformat: external threshold set without an external store")
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = DefaultWriteBuffer
	}
	var store entryStore = newMemStore()
	if opts.SpillDir != "" {
		var err error
		if store, err = newSpillStore(opts.SpillDir); err != nil {
			return nil, err
		}
	}
	wr := &Writer{
		bw:    bufio.NewWriterSize(writerOnly{w}, opts.BufferSize),
		opts:  opts,
		store: store,
	}
	var hdr [HeaderSize]byte
	copy(hdr[:], HeaderMagic)
	hdr[8] = Version
	wr.write(hdr[:])
	if wr.err != nil {
		return nil, errors.Join(wr.err, wr.store.release())
	}
	return wr, nil
}

// write appends p to the output, making any failure sticky.
func (w *Writer) write(p []byte) {
	if w.err != nil {
		return
	}
	n, err := w.bw.Write(p)
	w.off += uint64(n)
	if err != nil {
		w.err = fmt.Errorf("desformat: write: %w", err)
	}
}

// Count returns the number of payloads added so far.
func (w *Writer) Count() int { return int(w.count) }

// Add copies one payload of exactly fh.Size bytes from r into the archive
// (or into the external store when it is at least ExternalThreshold bytes).
//
// Input errors (name, meta, duplicate) are detected before anything is
// written and leave the Writer usable. Errors while copying (I/O, reader
// yielding a different size) leave a partial payload in the output, so the
// Writer refuses further use and Close returns that error.
func (w *Writer) Add(ctx context.Context, fh FileHeader, r io.Reader) error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.checkHeader(fh); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	mf := metaFields{size: fh.Size, hasCRC: true}
	external := w.opts.ExternalThreshold > 0 && fh.Size >= w.opts.ExternalThreshold
	if external {
		mf.extKey = ExternalKey(w.opts.ExternalPrefix, fh.Name)
	}
	// Encode meta before touching the output so bad meta costs nothing;
	// the checksum is patched in once the payload has been read.
	meta, err := appendMeta(w.meta[:0], fh.Meta, &mf)
	w.meta = meta
	if err == nil && len(meta) > MaxMetaLen {
		err = fmt.Errorf("%w: %d bytes (max %d)", ErrMetaTooLarge, len(meta), MaxMetaLen)
	}
	if err != nil {
		return fmt.Errorf("%q: %w", fh.Name, err)
	}

	e := writerEntry{name: fh.Name, size: uint64(fh.Size), mOff: w.metaLen, mLen: uint64(len(meta))}
	w.src.reset(r, fh.Size)
	if external {
		e.flags = FlagExternal
		err = w.putExternal(ctx, mf.extKey, fh.Size)
	} else {
		e.dOff = w.off
		err = w.copyPayload()
	}
	if err != nil {
		return fmt.Errorf("desformat: add %q: %w", fh.Name, err)
	}
	patchCRC(meta, mf.crcPos, w.src.crc)
	e.crc = w.src.crc
	if err := w.store.add(&e, meta); err != nil {
		// The payload is in the output but its entry is not: the archive cannot be finished.
		w.err = fmt.Errorf("desformat: add %q: %w", fh.Name, err)
		return w.err
	}
	w.count++
	w.payloadBytes += fh.Size
	w.metaLen += uint64(len(meta))
	w.metaCRC = crc32.Update(w.metaCRC, castagnoli, meta)
	w.last = e
	if cap(w.meta) > 64<<10 {
		w.meta = nil // one huge meta object must not stay allocated for the rest of the archive
	}
	return nil
}

func (w *Writer) usable() error {
	switch {
	case errors.Is(w.err, ErrAborted):
		return fmt.Errorf("%w: aborted", ErrWriterClosed)
	case w.err != nil:
		return fmt.Errorf("%w: %w", ErrWriterClosed, w.err)
	case w.closed:
		return ErrWriterClosed
	}
	return nil
}

func (w *Writer) checkHeader(fh FileHeader) error {
	if err := ValidateName(fh.Name); err != nil {
		return err
	}
	if fh.Size < 0 {
		return fmt.Errorf("%w: %q: negative size %d", ErrSizeMismatch, fh.Name, fh.Size)
	}
	switch dup, err := w.store.contains(fh.Name); {
	case err != nil:
		return fmt.Errorf("desformat: look up %q: %w", fh.Name, err)
	case dup:
		return fmt.Errorf("%w: %q", ErrDuplicateName, fh.Name)
	}
	return nil
}

// copyPayload streams the payload into the output buffer. A failure here
// has already emitted bytes, so it poisons the Writer.
func (w *Writer) copyPayload() error {
	n, err := w.bw.ReadFrom(&w.src)
	w.off += uint64(n)
	if err == nil && w.src.remaining != 0 {
		err = fmt.Errorf("%w: payload ended after %d bytes", ErrSizeMismatch, n)
	}
	if err != nil {
		w.err = err
	}
	return err
}

// putExternal streams the payload to the external store. Nothing has been
// written to the archive, so a failure leaves the Writer usable.
func (w *Writer) putExternal(ctx context.Context, key string, size int64) error {
	if err := w.opts.External.Put(ctx, key, &w.src, size); err != nil {
		return fmt.Errorf("external put %s: %w", key, err)
	}
	if w.src.remaining != 0 {
		return fmt.Errorf("%w: external store consumed %d of %d bytes", ErrSizeMismatch, w.src.n, size)
	}
	return nil
}

// patchCRC overwrites the placeholder checksum the meta encoder left at
// meta[pos:] (a quoted 8-digit hex string) with the real value.
func patchCRC(meta []byte, pos int, crc uint32) {
	appendCRCString(meta[pos:pos], crc)
}

// Close writes the meta region, the index and the footer, and flushes.
// It does not close the underlying io.Writer. It releases the Writer's
// temporary files whether or not it succeeds, also when the Writer failed
// earlier.
func (w *Writer) Close() error {
	if err := w.usable(); err != nil {
		return errors.Join(err, w.release())
	}
	w.closed = true
	var f Footer
	f.Version = Version
	f.DataStart, f.DataLength = HeaderSize, w.off-HeaderSize
	f.MetaStart, f.MetaLength = w.off, w.metaLen
	w.emit(func() error { return w.store.writeMeta(w.write) })
	if w.err == nil && w.off != f.MetaStart+f.MetaLength {
		w.err = fmt.Errorf("desformat: the meta region came back as %d bytes, %d were added", w.off-f.MetaStart, f.MetaLength)
	}
	f.IndexStart = w.off
	var crc uint32
	w.emit(func() error {
		return w.store.writeIndex(f.MetaStart, func(p []byte) {
			crc = crc32.Update(crc, castagnoli, p)
			w.write(p)
		})
	})
	f.IndexLength = w.off - f.IndexStart
	f.FileCount = uint64(w.count)

	buf := appendFooter(make([]byte, 0, FooterSize), &f)
	crc = crc32.Update(crc, castagnoli, buf[16:])
	buf[9] = featureIndexCRC | featurePayloadCRC
	buf[10], buf[11], buf[12], buf[13] = byte(crc), byte(crc>>8), byte(crc>>16), byte(crc>>24)
	w.write(buf)
	if w.err == nil {
		if err := w.bw.Flush(); err != nil {
			w.err = fmt.Errorf("desformat: flush: %w", err)
		}
	}
	w.summary = w.summarize(crc)
	if err := w.release(); err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

// emit runs one region's output from the store, making a store failure sticky like an output one.
func (w *Writer) emit(op func() error) {
	if w.err != nil {
		return
	}
	if err := op(); err != nil && w.err == nil {
		w.err = fmt.Errorf("desformat: read back spilled entries: %w", err)
	}
}

// Abort gives up the archive: the Writer becomes unusable and its temporary
// files are removed. Whatever was written to the output stays there; the
// caller discards it. Abort after Close, or twice, does nothing.
func (w *Writer) Abort() error {
	if !w.closed && w.err == nil {
		w.err = ErrAborted
	}
	w.closed = true
	return w.release()
}

// release frees what the store holds; later calls do nothing.
func (w *Writer) release() error {
	if w.store == nil {
		return nil
	}
	err := w.store.release()
	w.store, w.meta = nil, nil
	if err != nil {
		return fmt.Errorf("desformat: remove spill files: %w", err)
	}
	return nil
}

// payloadReader yields exactly `remaining` bytes of r, checksumming them,
// and reports a reader that has more or fewer bytes than declared.
type payloadReader struct {
	r         io.Reader
	remaining int64
	n         int64
	crc       uint32
	probe     [1]byte // field, not local: avoids an allocation per payload
}

func (p *payloadReader) reset(r io.Reader, size int64) {
	p.r, p.remaining, p.n, p.crc = r, size, 0, 0
}

func (p *payloadReader) Read(b []byte) (int, error) {
	if p.remaining <= 0 {
		// Declared size reached: the source must be exhausted too, or the
		// caller's size was wrong and the archive would silently truncate.
		n, err := p.r.Read(p.probe[:])
		switch {
		case n > 0:
			return 0, fmt.Errorf("%w: payload is longer than declared %d bytes", ErrSizeMismatch, p.n)
		case err != nil && err != io.EOF:
			return 0, err
		}
		return 0, io.EOF
	}
	if int64(len(b)) > p.remaining {
		b = b[:p.remaining]
	}
	n, err := p.r.Read(b)
	p.crc = crc32.Update(p.crc, castagnoli, b[:n])
	p.remaining -= int64(n)
	p.n += int64(n)
	if err == io.EOF {
		if p.remaining > 0 {
			return n, fmt.Errorf("%w: payload ended after %d bytes, declared %d", ErrSizeMismatch, p.n, p.n+p.remaining)
		}
		err = nil // let the next call probe for extra bytes
	}
	return n, err
}
