package desformat

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// nameSet finds the spilled index entries of names by hash with 8 bytes of memory per slot: an
// open-addressing table (linear probing, at most 3/4 full) whose slot holds the entry's offset in the
// spill file plus one (0: empty) in its low offsetBits bits and tagBits more bits of the name's hash
// above them, so that a probe reads the file only when those bits match too: for a duplicate, or
// about once in 16 million probes. The table does not keep whole hashes; to grow, it re-reads the
// names from the spill file (sequentially, once per doubling).
type nameSet struct {
	slots []uint64
	n     int
}

const (
	offsetBits = 40 // a terabyte of index entries
	tagBits    = 64 - offsetBits
	offsetMask = 1<<offsetBits - 1
	minSlots   = 1 << 10
)

// errIndexTooLarge means the spilled index outgrew what a slot can address.
var errIndexTooLarge = errors.New("desformat: spilled index larger than 1 TiB")

func tagOf(h uint64) uint64 { return h >> offsetBits }

// find calls same for each spilled entry whose slot matches h, until it reports the name itself.
func (t *nameSet) find(h uint64, same func(off int64) (bool, error)) (bool, error) {
	if len(t.slots) == 0 {
		return false, nil
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		switch {
		case s == 0:
			return false, nil
		case s>>offsetBits != tagOf(h):
			continue
		}
		if ok, err := same(int64(s&offsetMask) - 1); ok || err != nil {
			return ok, err
		}
	}
}

// insert records the entry at off for hash h; the caller grew the table first if it was full.
func (t *nameSet) insert(h uint64, off int64) {
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = tagOf(h)<<offsetBits | uint64(off+1)
	t.n++
}

// full reports whether one more entry would take the table past 3/4.
func (t *nameSet) full() bool { return (t.n+1)*4 > len(t.slots)*3 }

// rebuild makes a table twice as large (at least minSlots) from the entries in r, the index spill
// file from its start, hashing each name again.
func (t *nameSet) rebuild(r io.Reader, hash func(string) uint64) error {
	next := nameSet{slots: make([]uint64, max(minSlots, 2*len(t.slots)))}
	br := bufio.NewReaderSize(r, spillBuffer)
	name := make([]byte, 0, 256)
	var fixed [entryFixedSize]byte
	for off := int64(0); ; {
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("desformat: read spill file: %w", err)
		}
		n := int(binary.LittleEndian.Uint16(l[:]))
		if cap(name) < n {
			name = make([]byte, 0, n)
		}
		name = name[:n]
		if _, err := io.ReadFull(br, name); err != nil {
			return fmt.Errorf("desformat: read spill file: %w", err)
		}
		if _, err := io.ReadFull(br, fixed[:]); err != nil {
			return fmt.Errorf("desformat: read spill file: %w", err)
		}
		next.insert(hash(string(name)), off)
		off += int64(2 + n + entryFixedSize)
	}
	if next.n != t.n {
		return fmt.Errorf("desformat: the spill file holds %d entries, %d were added", next.n, t.n)
	}
	*t = next
	return nil
}
