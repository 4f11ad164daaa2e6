package main

import (
	"strings"
	"testing"

	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/test/testworld"
)

// startNameService runs the name service in-process until the test ends; with run false it never
// claims a node id and answers 503.
func startNameService(t *testing.T, run bool) string {
	t.Helper()
	return testworld.StartNameService(t, "DFLT", "cli-test", run)
}

func TestNameNewFromService(t *testing.T) {
	up, down := startNameService(t, true), startNameService(t, false)
	tests := []struct {
		name   string
		args   []string
		code   int
		count  int
		prefix string
		day    string // "" : any
	}{
		{"service defaults", []string{"--service", up, "--count", "3"}, 0, 3, "DFLT", ""},
		{"prefix and day", []string{"--service", up, "--prefix", "SCAN", "--day", "20260224"}, 0, 1, "SCAN", "20260224"},
		{"more than one request holds", []string{"--service", up, "--count", "10001"}, 0, 10001, "DFLT", ""},
		{"--node with --service", []string{"--service", up, "--node", "3"}, 2, 0, "", ""},
		{"bad URL", []string{"--service", "des-names:8080"}, 2, 0, "", ""},
		{"service without a node id", []string{"--service", down}, 1, 0, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := nameMustCLI(t, tc.code, append([]string{"new"}, tc.args...)...)
			if tc.code != 0 {
				return
			}
			lines := nameLines(out)
			seen := map[string]bool{}
			for _, l := range lines {
				n, err := naming.Parse(l)
				if err != nil || n.Prefix != tc.prefix || (tc.day != "" && n.Day.String() != tc.day) || seen[l] {
					t.Fatalf("%q: %+v, %v; want prefix %s, day %q, unique", l, n, err, tc.prefix, tc.day)
				}
				seen[l] = true
			}
			if len(lines) != tc.count {
				t.Fatalf("%d names, want %d", len(lines), tc.count)
			}
		})
	}
	if _, _, errOut := nameCLI("new", "--service", down); !strings.Contains(errOut, "503") {
		t.Fatalf("stderr %q does not report the 503", errOut)
	}
}
