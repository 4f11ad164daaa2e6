package desformat

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// nameSet finds the spilled index entries of names by hash with 4 bytes of memory per slot: an
// open-addressing table (linear probing, at most 3/4 full) of len 2^k whose slot holds the entry's
// ordinal plus one (0: empty) in its low k bits and the top 32-k bits of the name's hash above them,
// so that a probe reads the spill files only when those bits match too: for a duplicate, or about
// once in 2^(32-k) probes (4096 at a million names, 256 at ten million). The table does not keep
// whole hashes; to grow, it re-reads the names from the spill file (sequentially, once per doubling).
type nameSet struct {
	slots []uint32
	k     uint // log2(len(slots))
	n     int
}

const minSlots = 1 << 10

// errIndexTooLarge means the Writer holds more names than a slot can number.
var errIndexTooLarge = errors.New("desformat: more than 3·2^30 names to spill")

// slotMax is the most entries a table can hold: ordinals must fit in 32 bits.
const slotMax = 3 << 30

func (t *nameSet) tag(h uint64) uint32 {
	if t.k >= 32 {
		return 0
	}
	return uint32(h>>(64-(32-t.k))) << t.k
}

// find calls same for each spilled entry whose slot matches h, until it reports the name itself.
func (t *nameSet) find(h uint64, same func(ordinal int64) (bool, error)) (bool, error) {
	if len(t.slots) == 0 {
		return false, nil
	}
	mask := uint64(len(t.slots) - 1)
	low := uint32(mask)
	tag := t.tag(h)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		switch {
		case s == 0:
			return false, nil
		case s&^low != tag:
			continue
		}
		if ok, err := same(int64(s&low) - 1); ok || err != nil {
			return ok, err
		}
	}
}

// insert records the entry with ordinal for hash h; the caller grew the table first if it was full.
func (t *nameSet) insert(h uint64, ordinal int64) {
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = t.tag(h) | uint32(ordinal+1)
	t.n++
}

// full reports whether one more entry would take the table past 3/4.
func (t *nameSet) full() bool { return (t.n+1)*4 > len(t.slots)*3 }

// rebuild makes a table twice as large (at least minSlots) from the entries in r, the index spill
// file from its start, hashing each name again.
func (t *nameSet) rebuild(r io.Reader, hash func(string) uint64) error {
	if t.n >= slotMax {
		return errIndexTooLarge
	}
	size := max(minSlots, 2*len(t.slots))
	next := nameSet{slots: make([]uint32, size), k: uint(bits.TrailingZeros(uint(size)))}
	br := bufio.NewReaderSize(r, spillBuffer)
	name := make([]byte, 0, 256)
	var fixed [entryFixedSize]byte
	for ordinal := int64(0); ; ordinal++ {
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
		next.insert(hash(string(name)), ordinal)
	}
	if next.n != t.n {
		return fmt.Errorf("desformat: the spill file holds %d entries, %d were added", next.n, t.n)
	}
	*t = next
	return nil
}
