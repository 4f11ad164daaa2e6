package cli_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/datavision/des/internal/cli"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		wantOK   bool
		wantCode int
		inStderr string
	}{
		{"no flags", nil, true, cli.ExitOK, ""},
		{"own and logging flags", []string{"--size=3", "--zap-log-level=debug"}, true, cli.ExitOK, ""},
		{"help", []string{"--help"}, false, cli.ExitOK, "-zap-log-level"},
		{"unknown flag", []string{"--nope"}, false, cli.ExitUsage, "flag provided but not defined: -nope"},
		{"positional argument", []string{"extra"}, false, cli.ExitUsage, `manager demo: unexpected arguments ["extra"]`},
		{"bad log level", []string{"--zap-log-level=loud"}, false, cli.ExitUsage, "invalid value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			c := cli.New("demo", &stderr)
			size := c.Flags.Int("size", 1, "a flag of the subcommand")
			log, code, ok := c.Parse(tc.args)
			if ok != tc.wantOK || code != tc.wantCode {
				t.Fatalf("Parse(%q) = code %d ok %v, want %d %v; stderr %s", tc.args, code, ok, tc.wantCode, tc.wantOK, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.inStderr) {
				t.Fatalf("stderr %q lacks %q", stderr.String(), tc.inStderr)
			}
			if !ok {
				return
			}
			if tc.args != nil && *size != 3 {
				t.Fatalf("--size = %d, want 3", *size)
			}
			log.Info("hello", "k", "v")
			if !strings.Contains(stderr.String(), `"logger":"demo"`) || !strings.Contains(stderr.String(), `"msg":"hello"`) {
				t.Fatalf("the logger does not write JSON named after the command to stderr: %q", stderr.String())
			}
		})
	}
}
