package progress

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/datavision/des/test/testworld"
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
		if got := Want(tc.quiet, tc.tty, tc.term); got != tc.want {
			t.Errorf("Want(quiet=%v, tty=%v, TERM=%q) = %v, want %v", tc.quiet, tc.tty, tc.term, got, tc.want)
		}
	}
}

func TestRenderProgress(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     state
		width int
		want  string
	}{
		{"start", state{label: "des pack", totalFiles: 100000}, 100,
			"des pack [                              ]   0% 0/100000 files  0 B  0 B/s  ETA -:--"},
		{"by files", state{label: "des pack", files: 45000, totalFiles: 100000, bytes: 45000 * 4096, elapsed: 3 * time.Second}, 120,
			"des pack [============>                 ]  45% 45000/100000 files  175.8 MiB  58.6 MiB/s  ETA 0:04"},
		{"by bytes", state{label: "des verify", files: 1, totalFiles: 4, bytes: 3 << 30, totalBytes: 4 << 30, elapsed: 90 * time.Minute}, 100,
			"des verify [=====================>        ]  75% 1/4 files  3.0 GiB  582.5 KiB/s  ETA 30:00"},
		{"bar takes the room left", state{label: "des get", files: 1, totalFiles: 10, elapsed: time.Hour}, 80,
			"des get [=>                          ]  10% 1/10 files  0 B  0 B/s  ETA 9:00:00"},
		{"done", state{label: "des pack", files: 3, totalFiles: 3, bytes: 1023, elapsed: time.Second}, 80,
			"des pack [=========================] 100% 3/3 files  1023 B  1023 B/s  ETA 0:00"},
		{"no room for a bar", state{label: "des pack", files: 3, totalFiles: 3, bytes: 1023, elapsed: time.Second}, 60,
			"des pack 100% 3/3 files  1023 B  1023 B/s  ETA 0:00"},
		{"narrow: cut to width-1", state{label: "des pack", files: 1, totalFiles: 2, elapsed: time.Second}, 20,
			"des pack  50% 1/2 f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := render(tc.s, tc.width)
			want := "\r" + tc.want + "\x1b[K"
			if got != want {
				t.Fatalf("render =\n%q\nwant\n%q", got, want)
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

// On a real terminal the bar is drawn and its line cleared when the command ends.
func TestProgressOnPty(t *testing.T) {
	t.Setenv("TERM", "xterm")
	master, slave := testworld.OpenPty(t)
	got := testworld.ReadPtyUntil(master, "END")
	p := New(slave, false, "des pack", 10, 0)
	if p == nil {
		t.Fatal("no progress bar on a terminal")
	}
	p.Add(4, 4096)
	time.Sleep(3 * Interval) // let it draw; what is drawn is checked, not when
	p.Finish()
	fmt.Fprint(slave, "END")
	text := <-got
	if !strings.Contains(text, "des pack [") || !strings.Contains(text, "40% 4/10 files  4.0 KiB") {
		t.Fatalf("terminal shows %q, want a bar at 4/10 files", text)
	}
	if !strings.HasSuffix(text, "\r\x1b[KEND") {
		t.Fatalf("bar line not cleared at the end: %q", text)
	}
}
