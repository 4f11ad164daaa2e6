package containercheck_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/datavision/des/internal/containercheck"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/test/testworld"
)

func TestMain(m *testing.M) { testworld.Main(m, testworld.S3) }

const key = "arch/2026-03-01/0001/c0000000000000001/c0000000000000001.des"

// archive writes five files, the last three (≥ 300 B) external under the key's prefix, and returns the
// archive bytes and summary.
func archive(t *testing.T, store *objstore.Store, bucket string) ([]byte, desformat.Summary) {
	t.Helper()
	var buf bytes.Buffer
	w, err := desformat.NewWriter(&buf, desformat.WriterOptions{External: store.Blobs(bucket, objstore.UploadOptions{}),
		ExternalThreshold: 300, ExternalPrefix: "arch/2026-03-01/0001/c0000000000000001"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		data := testworld.RandomBytes(100*i, uint64(i))
		if err := w.Add(context.Background(), desformat.FileHeader{Name: fmt.Sprintf("N_%d", i), Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.Summary()
}

// TestOpenJudgesTheObject: Open and VerifyPayloads sort every state of an object into the finding a
// person (and recovery) acts on; only payload damage needs VerifyPayloads to be seen.
func TestOpenJudgesTheObject(t *testing.T) {
	ctx := context.Background()
	s3 := testworld.S3Store(t)
	store := s3.NewStore(t)
	bucket := s3.NewBucket(t)
	good, sum := archive(t, store, bucket)
	recorded := containercheck.Recorded{IndexChecksum: sum.IndexChecksum(), PayloadChecksum: sum.PayloadChecksum()}
	flip := func(at int) []byte {
		b := bytes.Clone(good)
		b[at] ^= 0xff
		return b
	}
	for _, tc := range []struct {
		name     string
		object   []byte // nil: nothing stored
		recorded containercheck.Recorded
		open     error // the Problem kind Open finds, nil for none
		payloads error // the Problem kind VerifyPayloads finds
		inText   string
	}{
		{"good", good, recorded, nil, nil, ""},
		{"good, nothing recorded yet", good, containercheck.Recorded{}, nil, nil, ""},
		{"missing", nil, recorded, containercheck.ErrNoObject, nil, "no object at its key"},
		{"truncated", good[:len(good)-10], recorded, containercheck.ErrDamaged, nil, "the object does not verify"},
		{"other checksums recorded", good, containercheck.Recorded{IndexChecksum: "00000000", PayloadChecksum: sum.PayloadChecksum()},
			containercheck.ErrChecksums, nil, "differ from the recorded 00000000/"},
		{"a payload byte flipped", flip(desformat.HeaderSize + 5), recorded, nil, containercheck.ErrPayloads, "checksum mismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := strings.ReplaceAll(tc.name, " ", "-") + "/" + key
			if tc.object != nil {
				if _, err := store.Put(ctx, bucket, k, tc.object, objstore.PutOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			obj, err := containercheck.Open(ctx, store, bucket, k, tc.recorded)
			if !matches(t, err, tc.open, tc.inText) || err != nil {
				return
			}
			if obj.Summary != sum {
				t.Fatalf("summary %+v, want %+v", obj.Summary, sum)
			}
			rep, err := obj.VerifyPayloads(ctx, nil)
			if !matches(t, err, tc.payloads, tc.inText) {
				return
			}
			// External payloads are read from the bucket, not skipped.
			if err == nil && (rep.Checksummed != 5 || rep.ExternalSkipped != 0 || rep.External != 3) {
				t.Fatalf("report %+v, want 5 payloads checked, 3 of them external", rep)
			}
		})
	}
}

// matches checks err against the wanted Problem kind and reports whether the test may go on.
func matches(t *testing.T, err, kind error, inText string) bool {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Fatalf("unexpected: %v", err)
		}
		return true
	}
	if _, ok := containercheck.AsProblem(err); !ok || !errors.Is(err, kind) {
		t.Fatalf("error %v, want a Problem of kind %v", err, kind)
	}
	if !strings.Contains(err.Error(), inText) {
		t.Fatalf("error %q does not say %q", err, inText)
	}
	return false
}

// TestPlaceClaimed: recovery's roll-forward check pairs every file with its claimed row, and a
// missing or extra row is a finding.
func TestPlaceClaimed(t *testing.T) {
	ctx := context.Background()
	s3 := testworld.S3Store(t)
	store := s3.NewStore(t)
	bucket := s3.NewBucket(t)
	data, _ := archive(t, store, bucket)
	if _, err := store.Put(ctx, bucket, key, data, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := containercheck.Open(ctx, store, bucket, key, containercheck.Recorded{})
	if err != nil {
		t.Fatal(err)
	}
	claimed := map[string]int64{"N_1": 11, "N_2": 12, "N_3": 13, "N_4": 14, "N_5": 15}
	ps, err := obj.PlaceClaimed(ctx, claimed)
	if err != nil || len(ps) != 5 {
		t.Fatalf("PlaceClaimed: %d placements, %v", len(ps), err)
	}
	delete(claimed, "N_3")
	_, err = obj.PlaceClaimed(ctx, claimed)
	matches(t, err, containercheck.ErrRows, "the object holds 5 files but 4 rows are claimed by the container")
}
