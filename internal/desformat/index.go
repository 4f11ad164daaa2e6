package desformat

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
)

// index is the validated index region in compact form. Entries are not
// decoded into Entry values (≈100 B each plus a map bucket): the region's
// own bytes hold names and fields, and three small arrays locate them, so
// a million-entry archive costs its index bytes plus ~12 B per entry.
type index struct {
	b   []byte   // the index region, validated by buildIndex; never modified
	pos []uint32 // byte offset in b of each entry, in index order
	// table is an open-addressing hash table over names: 0 is empty,
	// otherwise 1 + the position of the LAST entry with that name, which
	// is the one v1 lookups see.
	table []uint32
	// first marks the entries that are their name's first occurrence
	// (where listings show the name). nil when no name repeats, which is
	// the normal case: then every entry is first.
	first  []uint64
	unique int // distinct names
	seed   maphash.Seed
}

// Why uint32: offsets into an index of at most 4 GiB; buildIndex refuses larger ones.
const maxCompactIndex = math.MaxUint32

// buildIndex validates count entries that must exactly fill b, checking
// each against the footer's regions, and builds the name table in the same
// pass. It allocates only the compact arrays (no per-entry values), so
// opening a large archive does not transiently need several times the
// compact form.
func buildIndex(b []byte, f *Footer) (*index, error) {
	// validate bounded FileCount by len(b)/minEntrySize, so these
	// allocations are proportional to bytes actually read.
	if f.FileCount > uint64(len(b))/minEntrySize {
		return nil, corrupt(RegionIndex, "file_count %d cannot fit in %d index bytes", f.FileCount, len(b))
	}
	if uint64(len(b)) > maxCompactIndex {
		return nil, corrupt(RegionIndex, "index of %d bytes exceeds the %d-byte limit of this reader", len(b), uint64(maxCompactIndex))
	}
	n := int(f.FileCount)
	ix := &index{b: b, pos: make([]uint32, 0, n), table: make([]uint32, tableSize(n)), seed: maphash.MakeSeed()}
	pos := 0
	for i := range n {
		next, err := ix.checkEntry(i, pos, f)
		if err != nil {
			return nil, err
		}
		ix.pos = append(ix.pos, uint32(pos))
		ix.insert(i)
		pos = next
	}
	if pos != len(b) {
		return nil, corrupt(RegionIndex, "%d trailing bytes after %d entries", len(b)-pos, f.FileCount)
	}
	return ix, nil
}

// tableSize is a power of two keeping the load factor at most 3/4.
func tableSize(n int) int {
	want := n + n/3 + 1
	return 1 << bits.Len(uint(want-1))
}

// checkEntry validates entry i starting at byte pos and returns where the
// next one starts.
func (ix *index) checkEntry(i, pos int, f *Footer) (int, error) {
	b, le := ix.b, binary.LittleEndian
	if len(b)-pos < 2 {
		return 0, corrupt(RegionIndex, "entry %d: truncated name length at index byte %d", i, pos)
	}
	n := int(le.Uint16(b[pos:]))
	pos += 2
	if len(b)-pos < n+entryFixedSize {
		return 0, corrupt(RegionIndex, "entry %d: truncated at index byte %d", i, pos)
	}
	if n == 0 {
		return 0, corrupt(RegionIndex, "entry %d: empty name", i)
	}
	name := b[pos : pos+n]
	fx := b[pos+n : pos+n+entryFixedSize]
	dOff, dLen := le.Uint64(fx[0:]), le.Uint64(fx[8:])
	mOff, mLen := le.Uint64(fx[16:]), le.Uint64(fx[24:])
	flags := Flags(le.Uint32(fx[32:]))
	data, meta := f.dataRegion(), f.metaRegion()
	if !meta.contains(mOff, mLen) {
		return 0, corrupt(RegionIndex, "entry %d (%q): meta [%d,+%d) outside meta region [%d,%d)", i, name, mOff, mLen, meta.start, meta.end)
	}
	switch {
	case flags.External():
		if dLen > math.MaxInt64 {
			return 0, corrupt(RegionIndex, "entry %d (%q): external size %d too large", i, name, dLen)
		}
	case dLen == 0:
		// Nothing is ever read for an empty payload; see decode.
	case !data.contains(dOff, dLen):
		return 0, corrupt(RegionIndex, "entry %d (%q): data [%d,+%d) outside data region [%d,%d)", i, name, dOff, dLen, data.start, data.end)
	}
	return pos + n + entryFixedSize, nil
}

// insert adds entry i (all earlier entries are in the table): a repeated
// name now points at i, v1's "last one wins".
func (ix *index) insert(i int) {
	name := ix.nameBytes(i)
	mask := uint64(len(ix.table) - 1)
	for slot := maphash.Bytes(ix.seed, name) & mask; ; slot = (slot + 1) & mask {
		v := ix.table[slot]
		if v == 0 {
			ix.table[slot] = uint32(i) + 1
			ix.unique++
			ix.markFirst(i)
			return
		}
		if bytes.Equal(ix.nameBytes(int(v-1)), name) {
			ix.table[slot] = uint32(i) + 1
			if ix.first == nil {
				// First duplicate: every earlier entry was a first occurrence.
				ix.first = make([]uint64, (cap(ix.pos)+63)/64)
				for j := range i {
					ix.markFirst(j)
				}
			}
			return
		}
	}
}

func (ix *index) markFirst(i int) {
	if ix.first != nil {
		ix.first[i/64] |= 1 << (i % 64)
	}
}

func (ix *index) isFirst(i int) bool { return len(ix.first) == 0 || ix.first[i/64]&(1<<(i%64)) != 0 }

// lookup returns the position of the last entry named name.
func (ix *index) lookup(name string) (int, bool) {
	mask := uint64(len(ix.table) - 1)
	for slot := maphash.String(ix.seed, name) & mask; ; slot = (slot + 1) & mask {
		v := ix.table[slot]
		if v == 0 {
			return 0, false
		}
		if string(ix.nameBytes(int(v-1))) == name {
			return int(v - 1), true
		}
	}
}

func (ix *index) len() int { return len(ix.pos) }

// nameBytes returns entry i's name as stored (aliasing the index).
func (ix *index) nameBytes(i int) []byte {
	p := int(ix.pos[i])
	n := int(binary.LittleEndian.Uint16(ix.b[p:]))
	return ix.b[p+2 : p+2+n]
}

// entry decodes entry i; name is its name (the caller's string when it
// has one, so lookups allocate nothing).
func (ix *index) entry(i int, name string) Entry {
	le := binary.LittleEndian
	p := int(ix.pos[i])
	fx := ix.b[p+2+int(le.Uint16(ix.b[p:])):]
	e := Entry{
		Name: name, DataOffset: int64(le.Uint64(fx[0:])), Size: int64(le.Uint64(fx[8:])),
		MetaOffset: int64(le.Uint64(fx[16:])), MetaLength: int64(le.Uint64(fx[24:])), Flags: Flags(le.Uint32(fx[32:])),
	}
	if e.IsExternal() || e.Size == 0 {
		// v1 stores 0 as an external payload's offset and the current
		// position for an empty one; neither is ever read, so it is 0.
		e.DataOffset = 0
	}
	return e
}

// metaRange returns entry i's meta offset and length.
func (ix *index) metaRange(i int) (off, n int64) {
	le := binary.LittleEndian
	p := int(ix.pos[i])
	fx := ix.b[p+2+int(le.Uint16(ix.b[p:])):]
	return int64(le.Uint64(fx[16:])), int64(le.Uint64(fx[24:]))
}

// entryAt decodes entry i with a freshly allocated name.
func (ix *index) entryAt(i int) Entry { return ix.entry(i, string(ix.nameBytes(i))) }

// all decodes every entry, with names sliced out of one string copy of
// the index so that listing allocates O(1) times, not per entry.
func (ix *index) all() []Entry {
	s := string(ix.b)
	out := make([]Entry, ix.len())
	for i := range out {
		p := int(ix.pos[i])
		n := int(binary.LittleEndian.Uint16(ix.b[p:]))
		out[i] = ix.entry(i, s[p+2:p+2+n])
	}
	return out
}

// listing returns one entry per distinct name in first-occurrence order,
// each being the last entry with that name.
func (ix *index) listing() []Entry {
	all := ix.all()
	if ix.first == nil {
		return all
	}
	out := make([]Entry, 0, ix.unique)
	for i := range all {
		if ix.isFirst(i) {
			w, _ := ix.lookup(all[i].Name)
			out = append(out, all[w])
		}
	}
	return out
}

// memory is the bytes the compact arrays hold (the region bytes are
// counted by the Reader, which knows whether they alias its cache).
func (ix *index) memory() int64 {
	return 4*int64(cap(ix.pos)) + 4*int64(cap(ix.table)) + 8*int64(cap(ix.first))
}

// parseIndex decodes count entries that must exactly fill idx, checking
// each against the footer's regions (the materialised form of buildIndex).
func parseIndex(idx []byte, f *Footer) ([]Entry, error) {
	ix, err := buildIndex(idx, f)
	if err != nil {
		return nil, err
	}
	return ix.all(), nil
}
