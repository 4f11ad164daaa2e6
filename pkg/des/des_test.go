package des_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/datavision/des/pkg/des"
)

// TestErrorsMatchPublicSentinels checks that what the public API returns matches the public
// sentinels, i.e. that pkg/des forwards to the one implementation rather than wrapping it in errors
// of its own.
func TestErrorsMatchPublicSentinels(t *testing.T) {
	archive, err := writeArchive([][2]string{{"a.txt", "alpha"}})
	if err != nil {
		t.Fatal(err)
	}
	open := func(b []byte) error {
		_, err := des.NewReader(bytes.NewReader(b), int64(len(b)), des.ReaderOptions{})
		return err
	}
	damaged := bytes.Clone(archive)
	damaged[des.HeaderSize] ^= 0xff // first payload byte
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"not an archive", func() error { return open(bytes.Repeat([]byte{'x'}, 200)) }, des.ErrBadMagic},
		{"truncated", func() error { return open(archive[:len(archive)-1]) }, des.ErrBadMagic},
		{"too small", func() error { return open([]byte("DES")) }, des.ErrCorrupt},
		{"missing file", func() error { return readFile(archive, "b.txt") }, des.ErrNotFound},
		{"damaged payload", func() error { return readFile(damaged, "a.txt") }, des.ErrChecksum},
		{"invalid name", func() error { return des.ValidateName("a/b") }, des.ErrInvalidName},
		{"duplicate name", func() error { _, err := writeArchive([][2]string{{"a", "1"}, {"a", "2"}}); return err }, des.ErrDuplicateName},
		{"malformed DES name", func() error { _, err := des.ParseName("DES_2026"); return err }, des.ErrMalformedName},
		{"wrong name checksum", func() error { _, err := des.ParseName("DES_20260224_(8FC93AFE0300_94)"); return err }, des.ErrNameChecksum},
		{"shard width", func() error { _, err := des.Shard("x", 17); return err }, des.ErrShardBits},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want an error matching %v", err, tc.want)
			}
		})
	}
}

func readFile(archive []byte, name string) error {
	r, err := des.NewReader(bytes.NewReader(archive), int64(len(archive)), des.ReaderOptions{})
	if err != nil {
		return err
	}
	_, err = r.ReadFile(context.Background(), name)
	return err
}

// TestNameRoundTrip checks that names from a Generator parse back to the same fields and format
// identically, across prefixes and an explicit day.
func TestNameRoundTrip(t *testing.T) {
	tests := []struct {
		prefix string
		node   int
		day    *des.Day
	}{
		{"DES", 0, nil},
		{"SCAN-2", 255, nil},
		{"X", 17, &des.Day{Year: 2020, Month: 1, Day: 31}},
	}
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			g, err := des.NewGenerator(des.NameConfig{Prefix: tc.prefix, Node: tc.node})
			if err != nil {
				t.Fatal(err)
			}
			var s string
			if tc.day != nil {
				s, err = g.NewForDay(*tc.day)
			} else {
				s, err = g.New()
			}
			if err != nil {
				t.Fatal(err)
			}
			n, err := des.ParseName(s + ".tif")
			if err != nil {
				t.Fatal(err)
			}
			if n.Prefix != tc.prefix || int(n.Node) != tc.node || n.Ext != ".tif" || !strings.HasPrefix(n.String(), s) {
				t.Fatalf("%s parsed as %+v", s, n)
			}
			if tc.day != nil && n.Day != *tc.day {
				t.Fatalf("day %v, want %v", n.Day, *tc.day)
			}
		})
	}
}
