package packer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
)

// placementSpill keeps the placements of the container being written in a temporary file: one per
// file, so a million-file container would otherwise hold a hundred megabytes of them until its
// commit. It is the catalog.PlacementSource of that commit, read back in chunks; the file is
// unlinked as soon as it is created, so nothing is left behind even if the packer is killed.
type placementSpill struct {
	f       *os.File
	bw      *bufio.Writer
	count   int64 // placements added
	size    int64 // bytes added
	removed bool  // unlinked at creation
	scratch []byte
}

var _ catalog.PlacementSource = (*placementSpill)(nil)

// placementBuffer is the write buffer and the read-back buffer of the file.
const placementBuffer = 64 << 10

func newPlacementSpill(dir string) (*placementSpill, error) {
	f, err := os.CreateTemp(dir, "des-placements-*")
	if err != nil {
		return nil, fmt.Errorf("create the placements' temporary file: %w", err)
	}
	s := &placementSpill{f: f, bw: bufio.NewWriterSize(f, placementBuffer)}
	s.removed = os.Remove(f.Name()) == nil
	return s, nil
}

// add appends one placement.
func (s *placementSpill) add(p *catalog.Placement) error {
	b := s.scratch[:0]
	b = binary.AppendVarint(b, p.ID)
	b = binary.AppendVarint(b, p.Offset)
	b = binary.AppendVarint(b, p.Size)
	var flags byte
	if p.HasCRC {
		flags = 1
	}
	b = append(b, flags)
	b = binary.LittleEndian.AppendUint32(b, p.CRC32C)
	for _, str := range [...]string{p.Name, p.ExternalKey, p.SourceETag} {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	s.scratch = b
	n, err := s.bw.Write(b)
	s.size += int64(n)
	if err != nil {
		return fmt.Errorf("write the placements' temporary file: %w", err)
	}
	s.count++
	return nil
}

// Len implements catalog.PlacementSource.
func (s *placementSpill) Len() int64 { return s.count }

// errPlacementFile means the placements' file does not hold what was written to it.
var errPlacementFile = errors.New("the placements' temporary file is damaged")

// Chunks implements catalog.PlacementSource: it reads the file from the start each time.
func (s *placementSpill) Chunks(size int, fn func([]catalog.Placement) error) error {
	if err := s.bw.Flush(); err != nil {
		return fmt.Errorf("flush the placements' temporary file: %w", err)
	}
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, 0, s.size), placementBuffer)
	chunk := make([]catalog.Placement, 0, size)
	for i := int64(0); i < s.count; i++ {
		p, err := readPlacement(r)
		if err != nil {
			return fmt.Errorf("placement %d of %d: %w", i, s.count, err)
		}
		chunk = append(chunk, p)
		if len(chunk) == size || i == s.count-1 {
			if err := fn(chunk); err != nil {
				return err
			}
			clear(chunk) // drop the strings for the garbage collector
			chunk = chunk[:0]
		}
	}
	return nil
}

func readPlacement(r *bufio.Reader) (catalog.Placement, error) {
	var p catalog.Placement
	var err error
	ints := [...]*int64{&p.ID, &p.Offset, &p.Size}
	for _, v := range ints {
		if *v, err = binary.ReadVarint(r); err != nil {
			return p, errors.Join(errPlacementFile, err)
		}
	}
	var fixed [5]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return p, errors.Join(errPlacementFile, err)
	}
	p.HasCRC, p.CRC32C = fixed[0]&1 != 0, binary.LittleEndian.Uint32(fixed[1:])
	for _, str := range [...]*string{&p.Name, &p.ExternalKey, &p.SourceETag} {
		n, err := binary.ReadUvarint(r)
		if err != nil || n > desformat.MaxNameLen*4 {
			return p, errors.Join(errPlacementFile, err)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return p, errors.Join(errPlacementFile, err)
		}
		*str = string(b)
	}
	return p, nil
}

// close releases the file; later calls do nothing.
func (s *placementSpill) close() error {
	if s == nil || s.f == nil {
		return nil
	}
	err := s.f.Close()
	if !s.removed {
		if rerr := os.Remove(s.f.Name()); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	s.f, s.bw = nil, nil
	return err
}
