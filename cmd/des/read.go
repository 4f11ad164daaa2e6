package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/progress"
)

const externalRootHelp = "`DIR` laid out like the bucket (DIR/<key>) holding external payloads"

func runLs(args []string, stdout, stderr io.Writer) int {
	c := newCommand("ls", "[-l] ARCHIVE",
		`List the files in an archive, one per line, in archive order. A name that
holds a path (des pack stores dir/sub/a.txt as dir%2Fsub%2Fa.txt, see
'des pack --help') is shown as the path; -raw shows names as stored. With
-l, also show size, flags (ext = external payload) and the CRC-32C checksum
("-" for archives written without checksums, like DES v1).`, stdout, stderr)
	long := c.fs.Bool("l", false, "long listing: size, flags, checksum, name")
	raw := c.fs.Bool("raw", false, "show names exactly as stored, without decoding paths")
	pos, code, ok := c.parse(args, 1, 1)
	if !ok {
		return code
	}
	r, closer, err := openReader(context.Background(), pos[0], "", *long)
	if err != nil {
		return c.fail(err)
	}
	defer closer.Close()
	bw := bufio.NewWriter(stdout)
	show := displayName
	if *raw {
		show = func(name string) string { return name }
	}
	for _, e := range r.Entries() {
		if !*long {
			fmt.Fprintln(bw, show(e.Name))
			continue
		}
		sum := "-"
		crc, has, err := r.Checksum(e.Name)
		if err != nil {
			return c.fail(err)
		}
		if has {
			sum = fmt.Sprintf("%08x", crc)
		}
		flags := "-"
		if e.IsExternal() {
			flags = "ext"
		}
		fmt.Fprintf(bw, "%12d  %-3s  %-8s  %s\n", e.Size, flags, sum, show(e.Name))
	}
	if err := bw.Flush(); err != nil {
		return c.fail(err)
	}
	return exitOK
}

func runCat(args []string, stdout, stderr io.Writer) int {
	c := newCommand("cat", "[-q] [--external-root DIR] ARCHIVE NAME...",
		`Write the files' bytes to stdout, one after the other in the order given.
NAME is a name as stored or a path as des ls shows it (dir/sub/a.txt).
Every name is looked up before a byte is written. Checksums are verified as
the bytes stream; on a mismatch des exits 1 after that file's last byte
(discard the output). Many files get a progress bar on a terminal (-q: none).`, stdout, stderr)
	extRoot := c.fs.String("external-root", "", externalRootHelp)
	quiet := c.fs.Bool("q", false, "no progress bar")
	pos, code, ok := c.parse(args, 2, -1)
	if !ok {
		return code
	}
	ctx := context.Background()
	r, closer, err := openReader(ctx, pos[0], *extRoot, false)
	if err != nil {
		return c.fail(err)
	}
	defer closer.Close()
	names, total, err := catNames(r, pos[1:])
	if err != nil {
		return c.fail(err)
	}
	bar := progress.New(stderr, *quiet, "des cat", len(names), total)
	defer bar.Finish()
	for _, name := range names {
		n, err := catOne(ctx, r, name, stdout)
		if err != nil {
			bar.Finish() // before the message, so it is not drawn over
			return c.fail(err)
		}
		bar.Add(1, n)
	}
	return exitOK
}

// catNames resolves every argument to a stored name, and sums their sizes, before anything is
// written: a typo in the last name must not leave the others half-written on stdout.
func catNames(r *desformat.Reader, args []string) ([]string, int64, error) {
	names := make([]string, len(args))
	var total int64
	for i, arg := range args {
		names[i] = lookupName(r, arg)
		e, err := r.Stat(names[i])
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", arg, err)
		}
		total += e.Size
	}
	return names, total, nil
}

func catOne(ctx context.Context, r *desformat.Reader, name string, stdout io.Writer) (int64, error) {
	f, err := r.Open(ctx, name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := io.Copy(stdout, struct{ io.Reader }{f})
	if err != nil {
		return n, fmt.Errorf("%s: %w", name, err)
	}
	return n, nil
}

func runMeta(args []string, stdout, stderr io.Writer) int {
	c := newCommand("meta", "ARCHIVE NAME",
		`Print one file's meta JSON object exactly as stored, followed by a newline.
NAME is a name as stored or a path as des ls shows it.`, stdout, stderr)
	pos, code, ok := c.parse(args, 2, 2)
	if !ok {
		return code
	}
	r, closer, err := openReader(context.Background(), pos[0], "", false)
	if err != nil {
		return c.fail(err)
	}
	defer closer.Close()
	meta, err := r.Meta(lookupName(r, pos[1]))
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(stdout, "%s\n", meta)
	return exitOK
}

func runVerify(args []string, stdout, stderr io.Writer) int {
	c := newCommand("verify", "[--external-root DIR] ARCHIVE",
		`Check an archive: header, footer, index (and its checksum), every meta
object and every payload's length and CRC-32C. External payloads are
checked when --external-root is given. Exits 1 if anything is wrong.
A progress bar is shown on stderr when it is a terminal (not with -q).`, stdout, stderr)
	extRoot := c.fs.String("external-root", "", externalRootHelp)
	quiet := c.fs.Bool("q", false, "no progress bar")
	pos, code, ok := c.parse(args, 1, 1)
	if !ok {
		return code
	}
	ctx := context.Background()
	r, closer, err := openReader(ctx, pos[0], *extRoot, true)
	if err != nil {
		return c.fail(err)
	}
	defer closer.Close()
	rep, err := verifyWithProgress(ctx, r, *extRoot != "", stderr, *quiet)
	if err != nil {
		return c.fail(err)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(stderr, "des verify: %s: %v\n", pos[0], p)
	}
	if more := rep.ProblemCount - len(rep.Problems); more > 0 {
		fmt.Fprintf(stderr, "des verify: %s: ... and %d more problems\n", pos[0], more)
	}
	status := "OK"
	if rep.ProblemCount > 0 {
		status = fmt.Sprintf("FAILED (%d problems)", rep.ProblemCount)
	}
	fmt.Fprintf(stdout, "%s: %s: %d files", pos[0], status, rep.Names)
	if rep.Duplicates > 0 {
		fmt.Fprintf(stdout, " (+%d shadowed duplicate entries)", rep.Duplicates)
	}
	fmt.Fprintf(stdout, ", %d checksums verified, %d without checksum", rep.Checksummed, rep.Unchecksummed)
	if rep.External > 0 {
		fmt.Fprintf(stdout, ", %d external", rep.External)
	}
	fmt.Fprintln(stdout)
	if rep.ExternalSkipped > 0 {
		fmt.Fprintf(stdout, "note: %d external payloads not checked; pass --external-root DIR to check them\n", rep.ExternalSkipped)
	}
	if rep.ProblemCount > 0 {
		return exitError
	}
	return exitOK
}

func runStat(args []string, stdout, stderr io.Writer) int {
	c := newCommand("stat", "ARCHIVE", "Describe an archive: format, regions, counts and checksum coverage.", stdout, stderr)
	pos, code, ok := c.parse(args, 1, 1)
	if !ok {
		return code
	}
	r, closer, err := openReader(context.Background(), pos[0], "", false)
	if err != nil {
		return c.fail(err)
	}
	defer closer.Close()
	printStat(stdout, pos[0], r)
	return exitOK
}

func printStat(w io.Writer, path string, r *desformat.Reader) {
	f := r.Footer()
	var internal, external int64
	var nExt, nEmpty int
	for _, e := range r.Entries() {
		switch {
		case e.IsExternal():
			nExt++
			external += e.Size
		case e.Size == 0:
			nEmpty++
		default:
			internal += e.Size
		}
	}
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	fmt.Fprintf(tw, "archive:\t%s\n", path)
	fmt.Fprintf(tw, "size:\t%d bytes\n", r.Size())
	fmt.Fprintf(tw, "format:\tDES v%d\n", f.Version)
	fmt.Fprintf(tw, "files:\t%d (%d index entries, %d shadowed duplicates)\n", r.Len(), r.NumIndexEntries(), r.NumIndexEntries()-r.Len())
	fmt.Fprintf(tw, "empty files:\t%d\n", nEmpty)
	fmt.Fprintf(tw, "external files:\t%d (%d bytes)\n", nExt, external)
	fmt.Fprintf(tw, "internal bytes:\t%d\n", internal)
	fmt.Fprintf(tw, "header:\t[0, %d)\n", desformat.HeaderSize)
	fmt.Fprintf(tw, "data:\t[%d, %d)\n", f.DataStart, f.DataStart+f.DataLength)
	fmt.Fprintf(tw, "meta:\t[%d, %d)\n", f.MetaStart, f.MetaStart+f.MetaLength)
	fmt.Fprintf(tw, "index:\t[%d, %d)\n", f.IndexStart, f.IndexStart+f.IndexLength)
	fmt.Fprintf(tw, "footer:\t[%d, %d)\n", r.Size()-desformat.FooterSize, r.Size())
	if f.HasIndexChecksum() {
		fmt.Fprintf(tw, "index checksum:\tcrc32c %08x (verified)\n", f.IndexChecksum())
	} else {
		fmt.Fprintf(tw, "index checksum:\tnone (v1 archive)\n")
	}
	payload := "none (v1 archive)"
	if f.HasPayloadChecksums() {
		payload = "crc32c in meta"
	}
	fmt.Fprintf(tw, "payload checksums:\t%s\n", payload)
	tw.Flush()
}

// lookupName maps what a user typed to a stored name: the name itself when the archive has it,
// else its escaped form, so both dir%2Fsub%2Fa.txt and dir/sub/a.txt find that file. A name
// found neither way is returned as typed, for the reader's not-found error to name it.
func lookupName(r *desformat.Reader, arg string) string {
	if _, ok := r.Lookup(arg); ok {
		return arg
	}
	if esc := escapePath(arg); esc != arg {
		if _, ok := r.Lookup(esc); ok {
			return esc
		}
	}
	return arg
}

// verifyWithProgress runs Verify with a bar over the payload bytes it reads (external ones only
// when they are checked).
func verifyWithProgress(ctx context.Context, r *desformat.Reader, external bool, stderr io.Writer, quiet bool) (*desformat.VerifyReport, error) {
	var total int64
	for _, e := range r.IndexEntries() {
		if external || !e.IsExternal() {
			total += e.Size
		}
	}
	bar := progress.New(stderr, quiet, "des verify", r.NumIndexEntries(), total)
	defer bar.Finish()
	return r.VerifyProgress(ctx, func(e desformat.Entry) {
		if external || !e.IsExternal() {
			bar.Add(1, e.Size)
		} else {
			bar.Add(1, 0)
		}
	})
}
