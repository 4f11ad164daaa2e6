package client_test

import (
	"bytes"
	"errors"
	"net/http"
	"testing"

	"github.com/datavision/des/pkg/client"
)

func TestReadFileAndStat(t *testing.T) {
	f := newFixture(t)
	c := newReaderClient(t, f.url)
	tests := []struct {
		name   string
		ref    client.Ref
		want   []byte // nil: an error is expected
		is     error  // errors.Is target of the error
		status int    // StatusError status of the error (0: any)
	}{
		{"plain", client.Ref{Container: f.keyA, Name: nameHello}, f.data[nameHello], nil, 0},
		{"empty", client.Ref{Container: f.keyA, Name: nameEmpty}, []byte{}, nil, 0},
		{"unicode name", client.Ref{Container: f.keyA, Name: nameUnicode}, f.data[nameUnicode], nil, 0},
		{"verified whole by the sidecar", client.Ref{Container: f.keyA, Name: nameSmall}, f.data[nameSmall], nil, 0},
		{"streamed by the sidecar", client.Ref{Container: f.keyA, Name: nameStream}, f.data[nameStream], nil, 0},
		{"external payload", client.Ref{Container: f.keyA, Name: nameBig}, f.data[nameBig], nil, 0},
		{"DES name, container found by the sidecar", client.Ref{Name: f.des[5]}, f.data[f.des[5]], nil, 0},
		{"DES name in a container", client.Ref{Container: f.key[f.des[7]], Name: f.des[7]}, f.data[f.des[7]], nil, 0},
		{"unknown name", client.Ref{Container: f.keyA, Name: "nope.txt"}, nil, client.ErrNotFound, http.StatusNotFound},
		{"DES name stored nowhere", client.Ref{Name: f.absent}, nil, client.ErrNotFound, http.StatusNotFound},
		{"unknown container", client.Ref{Container: containerKey(0, "c0000000000000099"), Name: nameHello}, nil, client.ErrNotFound, http.StatusNotFound},
		{"key outside the archive prefix", client.Ref{Container: "private/x.des", Name: nameHello}, nil, nil, http.StatusForbidden},
		{"not a DES name", client.Ref{Name: nameHello}, nil, nil, http.StatusBadRequest},
		{"invalid name", client.Ref{Container: f.keyA, Name: "a:b"}, nil, nil, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.ReadFile(ctx(t), tc.ref)
			checkResult(t, got, err, tc.want, tc.is, tc.status)
			fi, err := c.Stat(ctx(t), tc.ref)
			if tc.want == nil {
				checkResult(t, nil, err, nil, tc.is, tc.status)
				return
			}
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			wantKey := f.key[tc.ref.Name]
			if fi.Name != tc.ref.Name || fi.Size != int64(len(tc.want)) || !fi.HasCRC || fi.CRC32C != crc32c(tc.want) || fi.Container != wantKey {
				t.Fatalf("Stat: %+v, want size %d, crc32c %08x, container %s", fi, len(tc.want), crc32c(tc.want), wantKey)
			}
		})
	}
}

// checkResult checks a read's bytes, or its error against errors.Is target is and HTTP status.
func checkResult(t *testing.T, got []byte, err error, want []byte, is error, status int) {
	t.Helper()
	if want != nil {
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, want %d (equal: false)", len(got), len(want))
		}
		return
	}
	if err == nil {
		t.Fatalf("got %d bytes and no error", len(got))
	}
	if is != nil && !errors.Is(err, is) {
		t.Fatalf("error %v does not match %v", err, is)
	}
	var se *client.StatusError
	if status != 0 && (!errors.As(err, &se) || se.Status != status) {
		t.Fatalf("error %v: want a StatusError with status %d", err, status)
	}
}

func TestReadRange(t *testing.T) {
	f := newFixture(t)
	c := newReaderClient(t, f.url)
	small, stream, big := f.data[nameSmall], f.data[nameStream], f.data[nameBig]
	tests := []struct {
		name        string
		file        string
		off, length int64
		want        []byte
		is          error
	}{
		{"head", nameSmall, 0, 100, small[:100], nil},
		{"middle", nameSmall, 1000, 24, small[1000:1024], nil},
		{"to the end", nameSmall, 8000, -1, small[8000:], nil},
		{"past the end is cut", nameSmall, int64(len(small)) - 10, 100, small[len(small)-10:], nil},
		{"streamed payload", nameStream, 20000, 5000, stream[20000:25000], nil},
		{"external payload", nameBig, 50000, 3, big[50000:50003], nil},
		{"start past the end", nameSmall, int64(len(small)), 1, nil, client.ErrRangeNotSatisfiable},
		{"empty file", nameEmpty, 0, 10, []byte{}, nil},
		{"zero length", nameSmall, 0, 0, nil, client.ErrRangeNotSatisfiable},
		{"negative offset", nameSmall, -1, 5, nil, client.ErrRangeNotSatisfiable},
		{"unknown name", "nope.txt", 0, 5, nil, client.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.ReadRange(ctx(t), client.Ref{Container: f.keyA, Name: tc.file}, tc.off, tc.length)
			checkResult(t, got, err, tc.want, tc.is, 0)
		})
	}
}

// TestTransportDamage puts a faulty proxy between client and sidecar: bytes changed or lost on the
// way must fail the read, never come back as the file.
func TestTransportDamage(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name  string
		file  string
		fault func([]byte) []byte
		is    error
	}{
		{"flipped byte", nameSmall, flipAt(f.data[nameSmall][:64]), client.ErrChecksum},
		{"flipped byte, streamed payload", nameStream, flipAt(f.data[nameStream][30000:30064]), client.ErrChecksum},
		{"cut body", nameSmall, cutAfter(4000), client.ErrIncomplete},
		{"cut before the first byte", nameHello, cutAfter(0), client.ErrIncomplete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newReaderClient(t, faultProxy(t, f.url, tc.fault))
			got, err := c.ReadFile(ctx(t), client.Ref{Container: f.keyA, Name: tc.file})
			checkResult(t, got, err, nil, tc.is, 0)
			var ce *client.ChecksumError
			if errors.Is(tc.is, client.ErrChecksum) && (!errors.As(err, &ce) || ce.Want != crc32c(f.data[tc.file])) {
				t.Fatalf("error %v: want a ChecksumError naming the announced crc32c %08x", err, crc32c(f.data[tc.file]))
			}
		})
	}
}

// TestServerSideDamage stores a damaged payload: the sidecar refuses a small one with 502 and cuts
// a streamed one, which the client must report rather than return.
func TestServerSideDamage(t *testing.T) {
	s := newStore(t)
	f := newFixture(t)
	archive := buildArchive(t, []file{{nameSmall, f.data[nameSmall]}, {nameStream, f.data[nameStream]}})
	for _, n := range [][]byte{f.data[nameSmall][:64], f.data[nameStream][30000:30064]} {
		archive[bytes.Index(archive, n)] ^= 0xff
	}
	key := containerKey(0, "c00000000000000ee")
	putObject(t, s, f.bucket, key, archive)
	c := newReaderClient(t, f.url)
	tests := []struct {
		file   string
		is     error
		status int
	}{
		{nameSmall, nil, http.StatusBadGateway},
		{nameStream, client.ErrIncomplete, 0},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got, err := c.ReadFile(ctx(t), client.Ref{Container: key, Name: tc.file})
			checkResult(t, got, err, nil, tc.is, tc.status)
		})
	}
}

func TestNewReaderRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8090", "ftp://host", "http://", "http://host/?q=1", "http://host/#f", "http://%zz"} {
		if _, err := client.NewReader(u, nil); err == nil {
			t.Errorf("NewReader(%q): no error", u)
		}
	}
	if _, err := client.NewReader("http://127.0.0.1:8090/", nil); err != nil {
		t.Errorf("NewReader: %v", err)
	}
}
