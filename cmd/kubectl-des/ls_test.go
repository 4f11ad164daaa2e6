package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestLs: ls lists the container's names from its index, in archive order; -l adds size, offset in
// the object, flags and CRC-32C as `des ls -l` does (plus the offset), wherever the flag is.
func TestLs(t *testing.T) {
	w := newWorld(t, true)
	var names, long strings.Builder
	for _, l := range w.locations() {
		fmt.Fprintln(&names, l.Name)
		off, flags := "-", "-"
		switch {
		case l.IsExternal():
			flags = "ext"
		case l.Size > 0:
			off = fmt.Sprint(l.Offset)
		}
		fmt.Fprintf(&long, "%12d  %12s  %-3s  %08x  %s\n", l.Size, off, flags, l.CRC32C, l.Name)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"names", []string{"ls", w.con.Name}, names.String()},
		{"long, flag first", []string{"ls", "-l", w.con.Name}, long.String()},
		{"long, flag last", []string{"ls", w.con.Name, "-l"}, long.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := w.run(tc.args...)
			if r.code != exitOK || r.stdout != tc.want {
				t.Fatalf("want exit 0 and\n%s\ngot %v", tc.want, r)
			}
		})
	}
	// The external payload is listed with its flag, the empty file without an offset.
	if !strings.Contains(long.String(), "ext") || !strings.Contains(long.String(), "           0             -  -    00000000  N_empty") {
		t.Fatalf("the fixture lacks an external or an empty file:\n%s", long.String())
	}
}

// TestLsFailures: what ls cannot list, it says why and what to do.
func TestLsFailures(t *testing.T) {
	w := newWorld(t, true)
	expect(t, w.run("ls"), exitUsage, nil, []string{"usage: kubectl des ls [-l] CONTAINER"})
	expect(t, w.run("ls", "nope"), exitError, nil, []string{`descontainers "nope" not found`, "kubectl get descontainers -n"})
	w.put(w.object[:len(w.object)/2])
	expect(t, w.run("ls", w.con.Name), exitError, nil, []string{"bad magic", "run kubectl des verify " + w.con.Name})
	if err := w.store.Delete(w.ctx, w.bucket, w.con.Spec.Key); err != nil {
		t.Fatal(err)
	}
	expect(t, w.run("ls", w.con.Name), exitError, nil, []string{"no object at s3://", "the container is Committed: its object should be there"})
}
