package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestWantProgress(t *testing.T) {
	for _, tc := range []struct {
		quiet, tty bool
		term       string
		want       bool
	}{
		{false, true, "xterm-256color", true},
		{false, true, "", true}, // TERM unset (some IDE terminals): still a terminal
		{true, true, "xterm", false},
		{false, false, "xterm", false}, // piped or redirected
		{false, true, "dumb", false},
		{true, false, "dumb", false},
	} {
		if got := wantProgress(tc.quiet, tc.tty, tc.term); got != tc.want {
			t.Errorf("wantProgress(quiet=%v, tty=%v, TERM=%q) = %v, want %v", tc.quiet, tc.tty, tc.term, got, tc.want)
		}
	}
}

func TestRenderProgress(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     progressState
		width int
		want  string
	}{
		{"start", progressState{label: "pack", totalFiles: 100000}, 100,
			"des pack [                              ]   0% 0/100000 files  0 B  0 B/s  ETA -:--"},
		{"by files", progressState{label: "pack", files: 45000, totalFiles: 100000, bytes: 45000 * 4096, elapsed: 3 * time.Second}, 120,
			"des pack [============>                 ]  45% 45000/100000 files  175.8 MiB  58.6 MiB/s  ETA 0:04"},
		{"by bytes", progressState{label: "verify", files: 1, totalFiles: 4, bytes: 3 << 30, totalBytes: 4 << 30, elapsed: 90 * time.Minute}, 100,
			"des verify [=====================>        ]  75% 1/4 files  3.0 GiB  582.5 KiB/s  ETA 30:00"},
		{"bar takes the room left", progressState{label: "get", files: 1, totalFiles: 10, elapsed: time.Hour}, 80,
			"des get [=>                          ]  10% 1/10 files  0 B  0 B/s  ETA 9:00:00"},
		{"done", progressState{label: "pack", files: 3, totalFiles: 3, bytes: 1023, elapsed: time.Second}, 80,
			"des pack [=========================] 100% 3/3 files  1023 B  1023 B/s  ETA 0:00"},
		{"no room for a bar", progressState{label: "pack", files: 3, totalFiles: 3, bytes: 1023, elapsed: time.Second}, 60,
			"des pack 100% 3/3 files  1023 B  1023 B/s  ETA 0:00"},
		{"narrow: cut to width-1", progressState{label: "pack", files: 1, totalFiles: 2, elapsed: time.Second}, 20,
			"des pack  50% 1/2 f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := renderProgress(tc.s, tc.width)
			want := "\r" + tc.want + "\x1b[K"
			if got != want {
				t.Fatalf("renderProgress =\n%q\nwant\n%q", got, want)
			}
			if line := strings.TrimSuffix(strings.TrimPrefix(got, "\r"), "\x1b[K"); len(line) > tc.width-1 {
				t.Fatalf("line is %d columns, terminal %d", len(line), tc.width)
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 40: "3.0 TiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

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

// openPty returns both ends of a new pseudo-terminal.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil { // unlockpt
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN) // ptsname
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// readUntil collects what the terminal shows until it holds marker.
func readUntil(master *os.File, marker string) <-chan string {
	got := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 4096)
		for !bytes.Contains(b.Bytes(), []byte(marker)) {
			n, err := master.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		got <- b.String()
	}()
	return got
}

// On a real terminal the bar is drawn and its line cleared when the command ends.
func TestProgressOnPty(t *testing.T) {
	t.Setenv("TERM", "xterm")
	master, slave := openPty(t)
	got := readUntil(master, "END")
	p := newProgress(slave, false, "pack", 10, 0)
	if p == nil {
		t.Fatal("no progress bar on a terminal")
	}
	p.add(4, 4096)
	time.Sleep(3 * progressInterval) // let it draw; what is drawn is checked, not when
	p.finish()
	fmt.Fprint(slave, "END")
	text := <-got
	if !strings.Contains(text, "des pack [") || !strings.Contains(text, "40% 4/10 files  4.0 KiB") {
		t.Fatalf("terminal shows %q, want a bar at 4/10 files", text)
	}
	if !strings.HasSuffix(text, "\r\x1b[KEND") {
		t.Fatalf("bar line not cleared at the end: %q", text)
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
			if newProgress(os.Stderr, true, "x", 1, 0) != nil {
				t.Fatal("-q still makes a bar")
			}
			master, slave := openPty(t)
			got := readUntil(master, "END")
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
