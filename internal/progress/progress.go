// Package progress draws the one-line progress bar of DES's long commands (des pack, verify, get;
// kubectl des cat, verify) on stderr, and only for a person watching it on a terminal: piped or
// redirected output, -q and TERM=dumb stay quiet. The des CLI and the kubectl plugin share it.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Interval caps redraws at 10 a second: smooth to the eye, negligible work.
const Interval = 100 * time.Millisecond

// Want decides whether a long command draws a progress bar: only for a person watching
// stderr on a terminal. Piped or redirected stderr (scripts, CI logs), -q, and TERM=dumb (which
// cannot move the cursor back) stay quiet.
func Want(quiet, stderrIsTerminal bool, term string) bool {
	return !quiet && stderrIsTerminal && term != "dumb"
}

// terminalFd returns w's file descriptor when w is a terminal.
func terminalFd(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return fd, err == nil
}

// Bar is a one-line bar on stderr, redrawn by its own goroutine from counters the command bumps
// with Add. A nil *Bar (no terminal, or -q) does nothing, so callers need no checks.
type Bar struct {
	w          io.Writer
	label      string
	totalFiles int64
	totalBytes int64 // 0: unknown, the bar and ETA go by files
	width      int
	start      time.Time

	files, bytes atomic.Int64
	stopOnce     sync.Once
	stopc, donec chan struct{}
}

// New starts a bar labelled label ("des pack") for a command that will handle totalFiles files
// (and totalBytes bytes, if known), or returns nil when Want says no.
func New(stderr io.Writer, quiet bool, label string, totalFiles int, totalBytes int64) *Bar {
	fd, isTerm := terminalFd(stderr)
	if !Want(quiet, isTerm, os.Getenv("TERM")) {
		return nil
	}
	width := 80
	if ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
		width = int(ws.Col)
	}
	p := &Bar{w: stderr, label: label, totalFiles: int64(totalFiles), totalBytes: totalBytes, width: width,
		start: time.Now(), stopc: make(chan struct{}), donec: make(chan struct{})}
	go p.loop()
	return p
}

// Add counts files and bytes done; safe from any goroutine.
func (p *Bar) Add(files int, bytes int64) {
	if p == nil {
		return
	}
	p.files.Add(int64(files))
	p.bytes.Add(bytes)
}

// Finish stops the bar and clears its line, so the command's own output starts on a clean line.
// Commands shorter than one interval never draw at all.
func (p *Bar) Finish() {
	if p == nil {
		return
	}
	p.stopOnce.Do(func() { close(p.stopc) })
	<-p.donec
}

func (p *Bar) loop() {
	defer close(p.donec)
	t := time.NewTicker(Interval)
	defer t.Stop()
	drawn := false
	for {
		select {
		case <-p.stopc:
			if drawn {
				fmt.Fprint(p.w, "\r\x1b[K")
			}
			return
		case <-t.C:
			fmt.Fprint(p.w, render(p.snapshot(), p.width))
			drawn = true
		}
	}
}

func (p *Bar) snapshot() state {
	return state{label: p.label, files: p.files.Load(), totalFiles: p.totalFiles,
		bytes: p.bytes.Load(), totalBytes: p.totalBytes, elapsed: time.Since(p.start)}
}

// state is what one frame shows.
type state struct {
	label             string
	files, totalFiles int64
	bytes, totalBytes int64
	elapsed           time.Duration
}

// fraction is how far the command is, by bytes when their total is known, else by files.
func (s state) fraction() float64 {
	var f float64
	switch {
	case s.totalBytes > 0:
		f = float64(s.bytes) / float64(s.totalBytes)
	case s.totalFiles > 0:
		f = float64(s.files) / float64(s.totalFiles)
	}
	return min(max(f, 0), 1)
}

// render draws one frame: carriage return, the line, clear-to-end-of-line. The line fits
// in width-1 columns (a full-width line would wrap on some terminals); the bar takes up to 30
// columns of what the figures leave and is dropped when fewer than 10 remain.
//
//	des pack [========>           ]  45% 45000/100000 files  175.8 MiB  58.6 MiB/s  ETA 0:04
func render(s state, width int) string {
	f := s.fraction()
	head := s.label + " "
	stats := fmt.Sprintf("%3d%% %d/%d files  %s  %s/s  ETA %s",
		int(f*100), s.files, s.totalFiles, formatBytes(s.bytes), formatBytes(rate(s.bytes, s.elapsed)), eta(f, s.elapsed))
	line := head + stats
	if room := width - 1 - len(line) - 3; room >= 10 { // 3: the brackets and a space
		line = head + bar(f, min(room, 30)) + " " + stats
	}
	if width > 1 && len(line) > width-1 {
		line = line[:width-1]
	}
	return "\r" + line + "\x1b[K"
}

// bar is [=====>    ] with n columns inside the brackets.
func bar(f float64, n int) string {
	done := int(f * float64(n))
	switch {
	case done >= n:
		return "[" + strings.Repeat("=", n) + "]"
	case done == 0:
		return "[" + strings.Repeat(" ", n) + "]"
	}
	return "[" + strings.Repeat("=", done-1) + ">" + strings.Repeat(" ", n-done) + "]"
}

func rate(bytes int64, elapsed time.Duration) int64 {
	if elapsed <= 0 {
		return 0
	}
	return int64(float64(bytes) / elapsed.Seconds())
}

// eta extrapolates the elapsed time linearly; "-:--" until there is something to go by.
func eta(f float64, elapsed time.Duration) string {
	if f <= 0 || elapsed <= 0 {
		return "-:--"
	}
	left := time.Duration(float64(elapsed) * (1 - f) / f)
	return formatDuration(left)
}

// formatDuration is m:ss, or h:mm:ss from an hour up.
func formatDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// formatBytes uses binary units with one decimal, like the rest of des's output.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}
