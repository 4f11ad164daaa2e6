package packer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/test/testworld"
)

// v1BigFileKey is where the original (v1) DES S3 reader looks for the external payload of name in
// the archive stored at containerKey: the folder of the key (everything before its last '/'), then
// _bigFiles/<name>. It ignores the entry's external_key. The v1 reader's source is not in this
// repository nor in ../shared; the rule is the one issue 13 (item 5) states for it, and it agrees
// with v1's own output: shared/testdata/des-v1/external-big was written into the folder
// 2025-11-25/shard_07 and its entries' external_key are 2025-11-25/shard_07/_bigFiles/<name>. It is
// written out here by string slicing, not with protocol or desformat helpers, so that it cannot
// follow a change of ours.
func v1BigFileKey(containerKey, name string) string {
	return containerKey[:strings.LastIndexByte(containerKey, '/')] + "/_bigFiles/" + name
}

// TestV1ReaderRuleFindsThePackersBigPayloads: for every big payload of every container the packer
// commits to the real S3 server, a plain GET of v1BigFileKey returns the payload's bytes, and the
// entry's external_key (what our reader uses) is that same key. A container of the legacy layout
// (protocol.LegacyContainerKey) is the counter-example the layout change fixes: the rule misses it.
func TestV1ReaderRuleFindsThePackersBigPayloads(t *testing.T) {
	testworld.ForEachDialect(t, testV1ReaderRuleFindsThePackersBigPayloads)
}

func testV1ReaderRuleFindsThePackersBigPayloads(t *testing.T, d catalog.Driver) {
	w := newWorld(t, worldOptions{driver: d, shards: []int32{2}, threshold: threshold})
	w.addRows(2, mixedSizes, 30, nil)
	if err := w.packer("pod-v1", nil, smallParts).Run(w.ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	w.check(nil)
	external := 0
	for _, c := range w.containers() {
		if c.Status.Phase != desv1.PhaseCommitted {
			continue
		}
		r := openArchive(t, w, c.Spec.Key)
		for _, e := range r.Entries() {
			if !e.IsExternal() {
				continue
			}
			external++
			key := v1BigFileKey(c.Spec.Key, e.Name)
			if got := getObject(t, w.ctx, w.store, w.bucket, key); !bytes.Equal(got, w.content[e.Name]) {
				t.Errorf("%s: GET %s gave %d bytes, want the %d of the source", e.Name, key, len(got), len(w.content[e.Name]))
			}
			if ek := externalKey(t, r, e.Name); ek != key {
				t.Errorf("%s: external_key %q, the v1 reader looks at %q", e.Name, ek, key)
			}
		}
	}
	if external == 0 {
		t.Fatal("no big payload was packed: the test checked nothing")
	}

	// A legacy container: object next to its prefix, big payloads inside it.
	day := time.Now().UTC()
	id := protocol.NewContainerID(day)
	legacy := protocol.LegacyContainerKey(w.ds.Spec.Archive.Prefix, day, 2, id)
	var buf bytes.Buffer
	dw, err := desformat.NewWriter(&buf, desformat.WriterOptions{External: w.store.Blobs(w.bucket, objstore.UploadOptions{}),
		ExternalThreshold: 1, ExternalPrefix: protocol.PrefixOfContainerKey(legacy)})
	if err != nil {
		t.Fatal(err)
	}
	if err := dw.Add(w.ctx, desformat.FileHeader{Name: "big", Size: 3}, strings.NewReader("big")); err != nil {
		t.Fatal(err)
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.Put(w.ctx, w.bucket, legacy, buf.Bytes(), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.store.Get(w.ctx, w.bucket, v1BigFileKey(legacy, "big"), nil); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("GET of the v1 rule's key for a legacy container: %v, want not found (the legacy layout is what v1 readers miss)", err)
	}
	if got := getObject(t, w.ctx, w.store, w.bucket, protocol.BigFilesPrefix(legacy)+"big"); string(got) != "big" {
		t.Fatalf("legacy big payload: %q", got)
	}
}

func openArchive(t *testing.T, w *world, key string) *desformat.Reader {
	t.Helper()
	data := getObject(t, w.ctx, w.store, w.bucket, key)
	r, err := desformat.NewReader(bytes.NewReader(data), int64(len(data)), desformat.ReaderOptions{})
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	return r
}

func getObject(t *testing.T, ctx context.Context, s *objstore.Store, bucket, key string) []byte {
	t.Helper()
	body, _, err := s.Get(ctx, bucket, key, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	return data
}

func externalKey(t *testing.T, r *desformat.Reader, name string) string {
	t.Helper()
	raw, err := r.Meta(name)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		ExternalKey string `json:"external_key"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("meta of %s: %v", name, err)
	}
	return m.ExternalKey
}
