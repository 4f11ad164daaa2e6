package main

import (
	"bytes"
	"testing"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

// TestCat: cat writes files by name byte for byte, several concatenated in the order asked (a name
// twice is written twice), through the catalog's placements, external and empty payloads included.
func TestCat(t *testing.T) {
	w := newWorld(t, true)
	for _, tc := range []struct {
		name  string
		args  []string
		files []string
	}{
		{"one", []string{"N_2"}, []string{"N_2"}},
		{"external", []string{"N_big"}, []string{"N_big"}},
		{"empty", []string{"N_empty"}, []string{"N_empty"}},
		{"several in order", []string{"N_mid", "N_1", "N_empty", "N_big", "N_1"}, []string{"N_mid", "N_1", "N_empty", "N_big", "N_1"}},
		{"--source named", []string{"--source", "src", "N_3"}, []string{"N_3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := w.run(append([]string{"cat"}, tc.args...)...)
			var want []byte
			for _, f := range tc.files {
				want = append(want, w.files[f]...)
			}
			if r.code != exitOK || r.stderr != "" || r.stdout != string(want) {
				t.Fatalf("want exit 0 and %d bytes, got exit %d, %d bytes (equal: %v), stderr %q", len(want), r.code, len(r.stdout), r.stdout == string(want), r.stderr)
			}
		})
	}
}

// TestCatRowWithoutPlacement: a row packed before placements were recorded is read by name from its
// container's index, as the reader sidecar does.
func TestCatRowWithoutPlacement(t *testing.T) {
	w := newWorld(t, true)
	w.db.Exec(t, `UPDATE objects SET des_offset = NULL, des_length = NULL, des_crc32c = NULL WHERE des_name IN ('N_3', 'N_big')`)
	r := w.run("cat", "N_3", "N_big", "N_1")
	want := string(w.files["N_3"]) + string(w.files["N_big"]) + string(w.files["N_1"])
	if r.code != exitOK || r.stdout != want {
		t.Fatalf("want exit 0 and %d bytes, got exit %d, %d bytes, stderr %q", len(want), r.code, len(r.stdout), r.stderr)
	}
}

// TestCatFailures: every failure says what is wrong and what to do, and writes nothing of a file it
// could not check.
func TestCatFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(w *world)
		args     []string
		inStderr []string
		stdout   func(w *world) string
	}{
		{name: "no name", args: nil, inStderr: []string{"usage: kubectl des cat [--source DESSOURCE] [-q] NAME..."}},
		{name: "a name not packed", args: []string{"N_1", "nope", "N_2"},
			inStderr: []string{`not packed: "nope"`, "has no packed row of that name in a committed container"}},
		{name: "not committed yet", setup: func(w *world) {
			w.db.Exec(w.t, `UPDATE objects SET status = 'claimed' WHERE des_name = 'N_2'`)
		}, args: []string{"N_2"}, inStderr: []string{`not packed: "N_2"`, "wait until it is packed"}},
		{name: "unknown source", args: []string{"--source", "other", "N_1"},
			inStderr: []string{`dessources "other" not found`, "kubectl get dessources -n"}},
		{name: "two sources, none chosen", setup: func(w *world) {
			src := &desv1.DesSource{}
			if err := w.kube.Get(w.ctx, clientKeyOf(w.ns, "src"), src); err != nil {
				w.t.Fatal(err)
			}
			other := &desv1.DesSource{Spec: src.Spec}
			other.Name = "another"
			w.create(other)
		}, args: []string{"N_1"}, inStderr: []string{"2 DesSources in namespace", "another, src", "pass --source NAME"}},
		{name: "a damaged payload", setup: func(w *world) {
			b := bytes.Clone(w.object)
			b[w.location("N_2").Offset] ^= 0x80
			w.put(b)
		}, args: []string{"N_1", "N_2", "N_3"}, inStderr: []string{`"N_2"`, "the catalog records 1000 bytes with crc32c", "nothing of it was written",
			"run kubectl des verify"},
			// What was checked before the damaged file is written; nothing of it or after it.
			stdout: func(w *world) string { return string(w.files["N_1"]) }},
		{name: "no DesShard archives it", setup: func(w *world) {
			ds := &desv1.DesShard{}
			if err := w.kube.Get(w.ctx, clientKeyOf(w.ns, "daily"), ds); err != nil {
				w.t.Fatal(err)
			}
			if err := w.kube.Delete(w.ctx, ds); err != nil {
				w.t.Fatal(err)
			}
		}, args: []string{"N_1"}, inStderr: []string{"where no DesShard of DesSource src archives", "read the object with des cat s3://"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, true)
			if tc.setup != nil {
				tc.setup(w)
			}
			r := w.run(append([]string{"cat"}, tc.args...)...)
			code := exitError
			if tc.args == nil {
				code = exitUsage
			}
			expect(t, r, code, nil, tc.inStderr)
			want := ""
			if tc.stdout != nil {
				want = tc.stdout(w)
			}
			if r.stdout != want {
				t.Errorf("stdout holds %d bytes, want %d", len(r.stdout), len(want))
			}
		})
	}
}
