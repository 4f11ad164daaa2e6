package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/pkg/client"
)

// Exit codes of runName. They match the rest of the des CLI; they are redeclared here so that this file does
// not depend on identifiers owned by main.go.
const (
	nameExitOK    = 0
	nameExitError = 1
	nameExitUsage = 2
)

// nameTimeLayout is RFC 3339 with milliseconds, the resolution of the time bits.
const nameTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// nameVerbs lists the sub-verbs of `des name` with their one-line summaries, in help order.
var nameVerbs = []struct{ verb, summary string }{
	{"new", "issue new names"},
	{"parse", "decode names and check their checksums"},
	{"shard", "print the shard id of names"},
}

// runName implements `des name VERB ...`; args start at VERB. It returns 0 on success, 1 on error, 2 on
// a usage error.
func runName(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		nameUsage(stderr)
		return nameExitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		nameUsage(stdout)
		return nameExitOK
	case "new":
		return nameNew(args[1:], stdout, stderr)
	case "parse":
		return nameParse(args[1:], stdout, stderr)
	case "shard":
		return nameShard(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "des name: unknown command %q\n\n", args[0])
	nameUsage(stderr)
	return nameExitUsage
}

func nameUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: des name COMMAND [flags] ARGS...")
	fmt.Fprintln(w, "\nDES names look like PREFIX_YYYYMMDD_(FFFFFFFFFFFF_CC)[.ext].")
	fmt.Fprintln(w, "\ncommands:")
	for _, v := range nameVerbs {
		fmt.Fprintf(w, "  %-6s %s\n", v.verb, v.summary)
	}
	fmt.Fprintln(w, "\nRun 'des name COMMAND --help' for a command's flags.")
}

// nameCommand is one `des name` sub-verb: its flags, help text and output streams.
type nameCommand struct {
	verb     string
	synopsis string
	help     string
	fs       *flag.FlagSet
	stdout   io.Writer
	stderr   io.Writer
}

func nameCommandNew(verb, synopsis, help string, stdout, stderr io.Writer) *nameCommand {
	fs := flag.NewFlagSet("des name "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr) // flag's own error messages
	fs.Usage = func() {} // usage is printed by us, to stdout for --help and stderr for mistakes
	return &nameCommand{verb: verb, synopsis: synopsis, help: help, fs: fs, stdout: stdout, stderr: stderr}
}

func (c *nameCommand) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: des name %s %s\n\n%s\n", c.verb, c.synopsis, c.help)
	fmt.Fprintln(w, "\nflags:")
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(c.stderr)
}

// parse accepts flags before, between and after the positional arguments ("--" ends the flags) and checks
// the positional count (maxArgs < 0: no limit). When ok is false the command must return code.
func (c *nameCommand) parse(args []string, minArgs, maxArgs int) (pos []string, code int, ok bool) {
	for {
		err := c.fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			c.usage(c.stdout)
			return nil, nameExitOK, false
		}
		if err != nil {
			c.usage(c.stderr)
			return nil, nameExitUsage, false
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < minArgs || (maxArgs >= 0 && len(pos) > maxArgs) {
		fmt.Fprintf(c.stderr, "des name %s: wrong number of arguments\n", c.verb)
		c.usage(c.stderr)
		return nil, nameExitUsage, false
	}
	return pos, nameExitOK, true
}

// usageError reports a bad flag value: the command line, not the data, is wrong.
func (c *nameCommand) usageError(format string, a ...any) int {
	fmt.Fprintf(c.stderr, "des name %s: %s\n", c.verb, fmt.Sprintf(format, a...))
	c.usage(c.stderr)
	return nameExitUsage
}

func (c *nameCommand) fail(err error) int {
	fmt.Fprintf(c.stderr, "des name %s: %v\n", c.verb, err)
	return nameExitError
}

func nameNew(args []string, stdout, stderr io.Writer) int {
	c := nameCommandNew("new", "[--prefix P] [--node N | --service URL] [--count K] [--day YYYYMMDD]",
		`Issue K new names, one per line. The day is today in UTC unless --day is given.
Names are unique among generators with distinct node ids: do not use a node id
that a running name-assignment service holds. With --service the names come
from that name service (manager assign) instead, which holds its node ids
under Leases; the prefix is then the service's default unless --prefix is given.`, stdout, stderr)
	prefix := c.fs.String("prefix", naming.DefaultPrefix, "name `prefix` (letters, digits and '-')")
	node := c.fs.Int("node", 0, "node `id`, 0..255")
	service := c.fs.String("service", "", "ask the name service at base `URL` (e.g. http://des-name-service.des-system)")
	count := c.fs.Int("count", 1, "number of names to issue (at most 256 per millisecond)")
	dayFlag := c.fs.String("day", "", "issue names for this UTC `day` (YYYYMMDD) instead of today")
	if _, code, ok := c.parse(args, 0, 0); !ok {
		return code
	}
	if *count < 1 {
		return c.usageError("--count must be at least 1, not %d", *count)
	}
	var day *naming.Day
	if *dayFlag != "" {
		d, err := naming.ParseDay(*dayFlag)
		if err != nil {
			return c.usageError("--day: %v", err)
		}
		day = &d
	}
	if *service != "" {
		return c.fromService(*service, *count, day, stdout)
	}
	g, err := naming.NewGenerator(naming.Config{Prefix: *prefix, Node: *node})
	if err != nil {
		return c.usageError("%v", err)
	}
	if err := nameIssue(g, day, *count, stdout); err != nil {
		return c.fail(err)
	}
	return nameExitOK
}

// fromService writes count names issued by the name service at baseURL, in requests of at most
// client.MaxNamesPerRequest names.
func (c *nameCommand) fromService(baseURL string, count int, day *naming.Day, stdout io.Writer) int {
	opts := client.NameOptions{}
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["node"] {
		return c.usageError("--node and --service exclude each other: the service picks its node id")
	}
	if set["prefix"] {
		opts.Prefix = c.fs.Lookup("prefix").Value.String()
	}
	if day != nil {
		opts.Day = *day
	}
	nc, err := client.NewNames(baseURL, nil)
	if err != nil {
		return c.usageError("--service: %v", err)
	}
	bw := bufio.NewWriter(stdout)
	for left := count; left > 0; {
		names, err := nc.New(context.Background(), min(left, client.MaxNamesPerRequest), opts)
		if err != nil {
			return c.fail(err)
		}
		for _, a := range names {
			bw.WriteString(a.Name + "\n")
		}
		left -= len(names)
	}
	if err := bw.Flush(); err != nil {
		return c.fail(err)
	}
	return nameExitOK
}

// nameIssue writes count names from g, for day or (nil) for the day of issue.
func nameIssue(g *naming.Generator, day *naming.Day, count int, stdout io.Writer) error {
	bw := bufio.NewWriter(stdout)
	buf := make([]byte, 0, 64)
	for i := 0; i < count; i++ {
		var n naming.Name
		var err error
		if day != nil {
			n, err = g.NextForDay(*day)
		} else {
			n, err = g.Next()
		}
		if err != nil {
			return err
		}
		buf = append(n.AppendTo(buf[:0]), '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// nameFields is what `des name parse` reports for one name; the JSON tags are its --json form.
type nameFields struct {
	Name       string `json:"name"`
	Prefix     string `json:"prefix,omitempty"`
	Day        string `json:"day,omitempty"`
	Node       *int   `json:"node,omitempty"` // pointers: node 0 and sequence 0 must still be printed
	Sequence   *int   `json:"sequence,omitempty"`
	TimeBits   *int64 `json:"time_bits,omitempty"`
	Time       string `json:"time,omitempty"`
	Checksum   string `json:"checksum,omitempty"`
	ChecksumOK *bool  `json:"checksum_ok,omitempty"`
	Extension  string `json:"extension,omitempty"`
	Error      string `json:"error,omitempty"`
}

func nameParse(args []string, stdout, stderr io.Writer) int {
	c := nameCommandNew("parse", "[--json] NAME...",
		`Decode each name and check its checksum. Prints key: value lines per name
(a blank line between names), or one JSON object per line with --json.
"time" is the generation time rebuilt from the day and the time bits; it is
"-" when they do not agree (names issued for an explicit day).
Exits 1 if any name is malformed or has a wrong checksum.`, stdout, stderr)
	asJSON := c.fs.Bool("json", false, "print one JSON object per name")
	names, code, ok := c.parse(args, 1, -1)
	if !ok {
		return code
	}
	bw := bufio.NewWriter(stdout)
	code = nameExitOK
	for i, s := range names {
		f, err := nameDescribe(s)
		if err != nil {
			code = nameExitError
			fmt.Fprintf(stderr, "des name parse: %v\n", err)
		}
		if *asJSON {
			b, _ := json.Marshal(f) // nameFields has only strings, numbers and bools
			bw.Write(append(b, '\n'))
			continue
		}
		if i > 0 {
			bw.WriteString("\n")
		}
		nameWriteFields(bw, f)
	}
	if err := bw.Flush(); err != nil {
		return c.fail(err)
	}
	return code
}

// nameDescribe parses s. A malformed name yields only its error; a wrong checksum still yields the fields.
func nameDescribe(s string) (nameFields, error) {
	f := nameFields{Name: s}
	n, err := naming.Parse(s)
	if err != nil {
		f.Error = err.Error()
		if !errors.Is(err, naming.ErrChecksum) {
			return f, err
		}
	}
	node, seq, bits, ok := int(n.Node), int(n.Seq), int64(n.TimeBits), err == nil
	f.Prefix, f.Day, f.Extension = n.Prefix, n.Day.String(), n.Ext
	f.Node, f.Sequence, f.TimeBits, f.ChecksumOK = &node, &seq, &bits, &ok
	cc := n.Checksum()
	var ce *naming.ChecksumError
	if errors.As(err, &ce) {
		cc = ce.Got // show the checksum as written in the name
	}
	f.Checksum = fmt.Sprintf("%02X", cc)
	if t, ok := n.Time(); ok {
		f.Time = t.Format(nameTimeLayout)
	}
	return f, err
}

// nameWriteFields prints f as "key: value" lines; a malformed name gets just its name and error.
func nameWriteFields(w io.Writer, f nameFields) {
	fmt.Fprintf(w, "name: %s\n", f.Name)
	if f.Node == nil {
		fmt.Fprintf(w, "error: %s\n", f.Error)
		return
	}
	t := f.Time
	if t == "" {
		t = "-"
	}
	ext := f.Extension
	if ext == "" {
		ext = "-"
	}
	fmt.Fprintf(w, "prefix: %s\nday: %s\nnode: %d\nsequence: %d\ntime bits: %d (0x%08X)\ntime: %s\n",
		f.Prefix, f.Day, *f.Node, *f.Sequence, *f.TimeBits, *f.TimeBits, t)
	fmt.Fprintf(w, "checksum: %s\nchecksum ok: %t\nextension: %s\n", f.Checksum, *f.ChecksumOK, ext)
	if f.Error != "" {
		fmt.Fprintf(w, "error: %s\n", f.Error)
	}
}

func nameShard(args []string, stdout, stderr io.Writer) int {
	c := nameCommandNew("shard", "--bits N NAME...",
		`Print the shard id of each name, one decimal number per line: the top N bits
of SHA-256 of the name (extension included), as DES v1 computes it. Names are
hashed as given, without checking that they parse.`, stdout, stderr)
	bits := c.fs.Int("bits", 0, "shard width in `bits`, "+strconv.Itoa(naming.MinShardBits)+".."+strconv.Itoa(naming.MaxShardBits)+" (required)")
	names, code, ok := c.parse(args, 1, -1)
	if !ok {
		return code
	}
	if *bits < naming.MinShardBits || *bits > naming.MaxShardBits {
		return c.usageError("--bits must be %d..%d, not %d", naming.MinShardBits, naming.MaxShardBits, *bits)
	}
	bw := bufio.NewWriter(stdout)
	for _, s := range names {
		shard, err := naming.Shard(s, *bits)
		if err != nil {
			return c.fail(err)
		}
		bw.WriteString(strconv.FormatUint(uint64(shard), 10))
		bw.WriteString("\n")
	}
	if err := bw.Flush(); err != nil {
		return c.fail(err)
	}
	return nameExitOK
}
