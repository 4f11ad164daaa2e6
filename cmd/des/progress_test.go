package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/datavision/des/internal/progress"
	"github.com/datavision/des/test/testworld"
)

// Output that is not a terminal never gets a bar: no escape sequences in a log.
func TestNoProgressWhenNotATerminal(t *testing.T) {
	src := writeTree(t, map[string]string{"a": "1", "b": "2"})
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	if code := run([]string{"pack", "-o", filepath.Join(t.TempDir(), "x.des"), src}, &out, f); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if b, _ := os.ReadFile(f.Name()); len(b) != 0 {
		t.Fatalf("stderr to a file got %q", b)
	}
}

// With -q, or TERM=dumb, a command on a terminal writes nothing there but its own output.
func TestQuietOnPty(t *testing.T) {
	src := writeTree(t, map[string]string{"d/a": "1", "d/b": "2"})
	for _, tc := range []struct {
		name, term string
		args       []string
	}{
		{"pack -q", "xterm", []string{"pack", "-q", "-o", "ARCHIVE", src}},
		{"TERM=dumb", "dumb", []string{"pack", "-o", "ARCHIVE", src}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TERM", tc.term)
			if progress.New(os.Stderr, true, "x", 1, 0) != nil {
				t.Fatal("-q still makes a bar")
			}
			master, slave := testworld.OpenPty(t)
			got := testworld.ReadPtyUntil(master, "END")
			archive := filepath.Join(t.TempDir(), "x.des")
			var args []string
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "ARCHIVE", archive))
			}
			var out bytes.Buffer
			if code := run(args, &out, slave); code != 0 {
				t.Fatalf("exit %d", code)
			}
			fmt.Fprint(slave, "END")
			if text := <-got; text != "END" {
				t.Fatalf("terminal got %q", text)
			}
		})
	}
}

// cat of many files writes them in the order given, looks every name up first (an unknown one
// writes nothing at all), and draws its bar on a terminal only.
func TestCatManyFiles(t *testing.T) {
	src := writeTree(t, map[string]string{"d/a": "aa", "d/b": "bbb", "d/c": "c"})
	archive := filepath.Join(t.TempDir(), "x.des")
	t.Chdir(filepath.Dir(src))
	mustCLI(t, 0, "pack", "-q", "-o", archive, filepath.Base(src))
	base := filepath.Base(src)
	if got := mustCLI(t, 0, "cat", archive, base+"/d/c", base+"/d/a", base+"/d/b", base+"/d/a"); got != "caabbbaa" {
		t.Fatalf("cat of four names = %q, want caabbbaa", got)
	}
	code, out, errOut := cli("cat", archive, base+"/d/a", base+"/d/nope")
	if code != exitError || out != "" || !strings.Contains(errOut, "d/nope") {
		t.Fatalf("cat with an unknown name: exit %d, stdout %q, stderr %q; want 1, nothing written, the name", code, out, errOut)
	}

	t.Setenv("TERM", "xterm")
	master, slave := testworld.OpenPty(t)
	got := testworld.ReadPtyUntil(master, "END")
	var stdout bytes.Buffer
	if code := run([]string{"cat", archive, base + "/d/a", base + "/d/b"}, &stdout, slave); code != 0 || stdout.String() != "aabbb" {
		t.Fatalf("cat on a terminal: exit %d, %q", code, stdout.String())
	}
	fmt.Fprint(slave, "END")
	// Too short to draw a frame (the first comes after one interval), so the terminal only shows
	// END; what a frame looks like is internal/progress's test. Here: nothing else leaks out.
	if text := <-got; text != "END" {
		t.Fatalf("terminal got %q", text)
	}
}
