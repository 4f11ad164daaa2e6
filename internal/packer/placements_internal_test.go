package packer

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
)

// TestPlacementSpill: the placements read back in chunks are exactly those written, in order, every
// time they are read (a commit tried again reads them again), and the file leaves nothing behind.
func TestPlacementSpill(t *testing.T) {
	var all []catalog.Placement
	for i := range 12345 {
		p := catalog.Placement{ID: int64(i*7 - 3), Location: desformat.Location{
			Name: fmt.Sprintf("DES_%06d.bin", i), Offset: int64(i) << 12, Size: int64(i % 5000), CRC32C: uint32(i) * 2654435761, HasCRC: i%3 != 0}}
		if i%10 == 0 {
			p.Offset, p.ExternalKey = 0, "prefix/_bigFiles/"+p.Name
		}
		if i%4 != 0 {
			p.SourceETag = fmt.Sprintf(`"%032x"`, i)
		}
		all = append(all, p)
	}
	for _, tc := range []struct {
		name  string
		files []catalog.Placement
		chunk int
	}{
		{"none", nil, 5000},
		{"one", all[:1], 5000},
		{"exactly one chunk", all[:5000], 5000},
		{"chunks and a rest", all, 5000},
		{"chunks of one", all[:50], 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := newPlacementSpill(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			for i := range tc.files {
				if err := s.add(&tc.files[i]); err != nil {
					t.Fatal(err)
				}
			}
			if s.Len() != int64(len(tc.files)) {
				t.Fatalf("Len %d, want %d", s.Len(), len(tc.files))
			}
			for try := range 2 {
				var got []catalog.Placement
				err := s.Chunks(tc.chunk, func(ps []catalog.Placement) error {
					if len(ps) == 0 || len(ps) > tc.chunk {
						t.Fatalf("chunk of %d placements (max %d)", len(ps), tc.chunk)
					}
					got = append(got, ps...)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tc.files) && len(got)+len(tc.files) > 0 {
					t.Fatalf("read %d: got %d placements back, not the %d written", try, len(got), len(tc.files))
				}
			}
			stop := errors.New("stop")
			if err := s.Chunks(tc.chunk, func([]catalog.Placement) error { return stop }); len(tc.files) > 0 && !errors.Is(err, stop) {
				t.Fatalf("Chunks did not return fn's error: %v", err)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("%d files in the temporary directory", len(left))
			}
			if err := s.close(); err != nil {
				t.Fatal(err)
			}
			if err := s.close(); err != nil {
				t.Fatalf("second close: %v", err)
			}
		})
	}
}
