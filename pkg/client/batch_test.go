package client_test

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/datavision/des/pkg/client"
)

// batchResult is what a batch delivered: bytes per found name, the missing names, and the error
// that ended the stream.
type batchResult struct {
	got     map[string][]byte
	missing []string
	end     error
}

func collect(t *testing.T, c *client.Reader, req client.BatchRequest) batchResult {
	t.Helper()
	r := batchResult{got: map[string][]byte{}}
	for p, err := range c.Batch(ctx(t), req) {
		switch {
		case p == nil:
			r.end = err
		case p.Missing:
			if !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("missing part %q came with error %v", p.Name, err)
			}
			r.missing = append(r.missing, p.Name)
		case err != nil:
			t.Fatalf("part %q: %v", p.Name, err)
		default:
			b, err := p.Bytes()
			if err != nil {
				r.end = err
				return r
			}
			r.got[p.Name] = b
		}
	}
	return r
}

func TestBatch(t *testing.T) {
	f := newFixture(t)
	c := newReaderClient(t, f.url)
	plain := []string{nameBig, nameHello, nameEmpty, nameUnicode, nameStream, nameSmall}
	tests := []struct {
		name    string
		req     client.BatchRequest
		found   []string
		missing []string
	}{
		{"one container", client.BatchRequest{Container: f.keyA, Names: append(slices.Clone(plain), "nope.txt", nameHello)},
			plain, []string{"nope.txt"}},
		{"DES names across containers", client.BatchRequest{Names: append(slices.Clone(f.des), f.absent, f.des[0])},
			f.des, []string{f.absent}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := collect(t, c, tc.req)
			if r.end != nil {
				t.Fatal(r.end)
			}
			if len(r.got) != len(tc.found) || !slices.Equal(r.missing, tc.missing) {
				t.Fatalf("got %d files and missing %q, want %d files and missing %q", len(r.got), r.missing, len(tc.found), tc.missing)
			}
			for _, n := range tc.found {
				if !bytes.Equal(r.got[n], f.data[n]) {
					t.Errorf("%q: %d bytes differ from the %d stored", n, len(r.got[n]), len(f.data[n]))
				}
			}
		})
	}
}

// TestBatchFailures covers what ends a batch: a refused request, damaged or lost bytes on the way.
func TestBatchFailures(t *testing.T) {
	f := newFixture(t)
	all := client.BatchRequest{Container: f.keyA, Names: []string{nameHello, nameSmall, nameStream, nameBig}}
	tests := []struct {
		name   string
		fault  func([]byte) []byte // nil: straight to the sidecar
		req    client.BatchRequest
		is     error
		status int
	}{
		{"no names", nil, client.BatchRequest{Container: f.keyA}, nil, http.StatusBadRequest},
		{"forbidden container", nil, client.BatchRequest{Container: "private/x.des", Names: []string{nameHello}}, nil, http.StatusForbidden},
		{"unknown container", nil, client.BatchRequest{Container: containerKey(0, "c0000000000000099"), Names: []string{nameHello}}, client.ErrNotFound, http.StatusNotFound},
		{"flipped byte in a part", flipAt(f.data[nameSmall][100:164]), all, client.ErrChecksum, 0},
		{"flipped byte in a streamed part", flipAt(f.data[nameStream][100:164]), all, client.ErrChecksum, 0},
		{"byte lost inside a part", dropAt(f.data[nameSmall][100:164]), all, client.ErrIncomplete, 0},
		{"stream cut inside a part", cutAfter(9000), all, client.ErrIncomplete, 0},
		{"stream cut before the closing boundary", func(b []byte) []byte { return b[:len(b)-10] }, all, client.ErrIncomplete, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := f.url
			if tc.fault != nil {
				u = faultProxy(t, f.url, tc.fault)
			}
			r := collect(t, newReaderClient(t, u), tc.req)
			checkResult(t, nil, r.end, nil, tc.is, tc.status)
		})
	}
	// A well-formed stream with fewer parts than announced: whole parts lost on the way.
	t.Run("fewer parts than announced", func(t *testing.T) {
		r := collect(t, newReaderClient(t, headerProxy(t, f.url, client.HeaderFiles, "5")), all)
		checkResult(t, nil, r.end, nil, client.ErrIncomplete, 0)
		if len(r.got) != 4 {
			t.Fatalf("%d files delivered before the end, want all 4", len(r.got))
		}
	})
	t.Run("bad part count header", func(t *testing.T) {
		r := collect(t, newReaderClient(t, headerProxy(t, f.url, client.HeaderMissing, "x")), all)
		checkResult(t, nil, r.end, nil, client.ErrProtocol, 0)
	})
}

// TestBatchStopEarly checks that leaving the loop early is clean: the iterator stops and a new
// batch on the same client works.
func TestBatchStopEarly(t *testing.T) {
	f := newFixture(t)
	c := newReaderClient(t, f.url)
	n := 0
	for p, err := range c.Batch(ctx(t), client.BatchRequest{Names: f.des}) {
		if err != nil || p == nil {
			t.Fatalf("part %v: %v", p, err)
		}
		n++
		break
	}
	if n != 1 {
		t.Fatalf("%d parts before break", n)
	}
	r := collect(t, c, client.BatchRequest{Names: f.des[:3]})
	if r.end != nil || len(r.got) != 3 {
		t.Fatalf("second batch: %d files, %v", len(r.got), r.end)
	}
}
