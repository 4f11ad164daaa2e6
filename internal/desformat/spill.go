package desformat

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
)

// entryStore keeps what a Writer emits after the payloads: the meta region and the index entries,
// and the names added so far for the duplicate check.
type entryStore interface {
	// contains reports whether name was added.
	contains(name string) (bool, error)
	// add records one entry (mOff relative to the meta region) and its final meta object.
	add(e *writerEntry, meta []byte) error
	// writeMeta hands the meta region to out, in order.
	writeMeta(out func([]byte)) error
	// writeIndex hands the encoded index entries to out, in order, with metaStart added to each
	// meta offset.
	writeIndex(metaStart uint64, out func([]byte)) error
	// release frees the store; it is called once.
	release() error
}

// memStore keeps everything in memory: the fastest, for archives whose index fits.
type memStore struct {
	names   map[string]struct{}
	entries []writerEntry
	meta    []byte
}

func newMemStore() *memStore { return &memStore{names: make(map[string]struct{})} }

func (m *memStore) contains(name string) (bool, error) {
	_, ok := m.names[name]
	return ok, nil
}

func (m *memStore) add(e *writerEntry, meta []byte) error {
	m.entries = append(m.entries, *e)
	m.names[e.name] = struct{}{}
	m.meta = append(m.meta, meta...)
	return nil
}

func (m *memStore) writeMeta(out func([]byte)) error {
	out(m.meta)
	return nil
}

func (m *memStore) writeIndex(metaStart uint64, out func([]byte)) error {
	scratch := make([]byte, 0, 512)
	for i := range m.entries {
		e := &m.entries[i]
		scratch = appendIndexEntry(scratch[:0], e.name, e.dOff, e.size, metaStart+e.mOff, e.mLen, e.flags)
		out(scratch)
	}
	return nil
}

func (m *memStore) release() error {
	m.names, m.entries, m.meta = nil, nil, nil
	return nil
}

// spillBuffer is the buffer of each spill file, for appending and for reading back.
const spillBuffer = 64 << 10

// spillStore appends meta objects and index entries (meta offsets relative to the meta region, so
// they are final but for one addition) to two temporary files, and each entry's offset in the index
// file to a third (8 bytes an entry), so that the duplicate check can find a name by its ordinal. Its
// memory is the three buffers and, for the exact duplicate check, a nameSet: 5 to 11 bytes per name.
type spillStore struct {
	meta, index, offsets spillFile
	hash                 func(string) uint64 // a seeded maphash; tests make every name collide
	names                nameSet
	scratch, lookup      []byte
}

// spillFile is one append-only temporary file, read back from the start in Close.
type spillFile struct {
	f       *os.File
	bw      *bufio.Writer
	n       int64  // bytes appended
	removed bool   // unlinked at creation: nothing is left behind even if the process dies
	name    string // to remove at release where unlinking an open file is not allowed
}

func newSpillStore(dir string) (*spillStore, error) {
	seed := maphash.MakeSeed()
	s := &spillStore{hash: func(n string) uint64 { return maphash.String(seed, n) }}
	if err := s.meta.create(dir, "des-meta-*"); err != nil {
		return nil, err
	}
	if err := s.index.create(dir, "des-index-*"); err != nil {
		return nil, errors.Join(err, s.meta.close())
	}
	if err := s.offsets.create(dir, "des-offsets-*"); err != nil {
		return nil, errors.Join(err, s.meta.close(), s.index.close())
	}
	return s, nil
}

func (f *spillFile) create(dir, pattern string) error {
	file, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return fmt.Errorf("desformat: create spill file: %w", err)
	}
	f.f, f.name = file, file.Name()
	f.bw = bufio.NewWriterSize(file, spillBuffer)
	// On POSIX systems an open file can be unlinked and still used: the space comes back when it is
	// closed or the process ends, so a crash leaves no temporary file behind.
	f.removed = os.Remove(f.name) == nil
	return nil
}

func (f *spillFile) write(p []byte) error {
	n, err := f.bw.Write(p)
	f.n += int64(n)
	if err != nil {
		return fmt.Errorf("desformat: write spill file: %w", err)
	}
	return nil
}

// readAt reads len(p) bytes at off, flushing first if they are still in the buffer.
func (f *spillFile) readAt(p []byte, off int64) error {
	if off+int64(len(p)) > f.n-int64(f.bw.Buffered()) {
		if err := f.bw.Flush(); err != nil {
			return fmt.Errorf("desformat: flush spill file: %w", err)
		}
	}
	if _, err := f.f.ReadAt(p, off); err != nil {
		return fmt.Errorf("desformat: read spill file: %w", err)
	}
	return nil
}

// reader flushes the file and returns a buffered reader of all of it.
func (f *spillFile) reader() (*bufio.Reader, error) {
	if err := f.bw.Flush(); err != nil {
		return nil, fmt.Errorf("desformat: flush spill file: %w", err)
	}
	return bufio.NewReaderSize(io.NewSectionReader(f.f, 0, f.n), spillBuffer), nil
}

func (f *spillFile) close() error {
	if f.f == nil {
		return nil
	}
	err := f.f.Close()
	if !f.removed {
		if rerr := os.Remove(f.name); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	f.f, f.bw = nil, nil
	return err
}

func (s *spillStore) contains(name string) (bool, error) {
	return s.names.find(s.hash(name), func(ordinal int64) (bool, error) {
		var b [8]byte
		if err := s.offsets.readAt(b[:], ordinal*8); err != nil {
			return false, err
		}
		return s.nameAt(int64(binary.LittleEndian.Uint64(b[:])), name)
	})
}

// nameAt reports whether the index entry spilled at off has name.
func (s *spillStore) nameAt(off int64, name string) (bool, error) {
	var l [2]byte
	if err := s.index.readAt(l[:], off); err != nil {
		return false, err
	}
	if int(binary.LittleEndian.Uint16(l[:])) != len(name) {
		return false, nil
	}
	if cap(s.lookup) < len(name) {
		s.lookup = make([]byte, len(name))
	}
	b := s.lookup[:len(name)]
	if err := s.index.readAt(b, off+2); err != nil {
		return false, err
	}
	return string(b) == name, nil
}

func (s *spillStore) add(e *writerEntry, meta []byte) error {
	off := s.index.n
	if s.names.full() {
		if err := s.index.bw.Flush(); err != nil {
			return fmt.Errorf("desformat: flush spill file: %w", err)
		}
		if err := s.names.rebuild(io.NewSectionReader(s.index.f, 0, s.index.n), s.hash); err != nil {
			return err
		}
	}
	if err := s.meta.write(meta); err != nil {
		return err
	}
	s.scratch = appendIndexEntry(s.scratch[:0], e.name, e.dOff, e.size, e.mOff, e.mLen, e.flags)
	if err := s.index.write(s.scratch); err != nil {
		return err
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(off))
	if err := s.offsets.write(b[:]); err != nil {
		return err
	}
	s.names.insert(s.hash(e.name), int64(s.names.n))
	return nil
}

func (s *spillStore) writeMeta(out func([]byte)) error {
	r, err := s.meta.reader()
	if err != nil {
		return err
	}
	buf := make([]byte, spillBuffer)
	for {
		n, err := r.Read(buf)
		out(buf[:n])
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return fmt.Errorf("desformat: read spill file: %w", err)
		}
	}
}

func (s *spillStore) writeIndex(metaStart uint64, out func([]byte)) error {
	r, err := s.index.reader()
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	entry := make([]byte, 0, 512)
	for {
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("desformat: read spill file: %w", err)
		}
		n := 2 + int(le.Uint16(l[:])) + entryFixedSize
		if cap(entry) < n {
			entry = make([]byte, 0, n)
		}
		entry = entry[:n]
		copy(entry, l[:])
		if _, err := io.ReadFull(r, entry[2:]); err != nil {
			return fmt.Errorf("desformat: read spill file: %w", err)
		}
		// The fixed part is data_offset, data_length, meta_offset, …: make meta_offset absolute.
		mo := entry[n-entryFixedSize+16:]
		le.PutUint64(mo, le.Uint64(mo)+metaStart)
		out(entry)
	}
}

func (s *spillStore) release() error {
	s.names = nameSet{}
	return errors.Join(s.meta.close(), s.index.close(), s.offsets.close())
}
