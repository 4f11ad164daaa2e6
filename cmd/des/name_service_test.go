package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/datavision/des/internal/assign"
	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/internal/nodeid"
	"github.com/datavision/des/test/testworld"
)

// startNameService runs the name service in-process until the test ends; with run false it never
// claims a node id and answers 503.
func startNameService(t *testing.T, run bool) string {
	t.Helper()
	svc, err := assign.New(assign.Config{DefaultPrefix: "DFLT", DefaultShardBits: 12, RetryInterval: time.Second,
		Lease: nodeid.Options{Namespace: testworld.K8s(t).NewNamespace(t), Identity: "cli-test",
			LeaseDuration: 2 * time.Second, RenewInterval: 100 * time.Millisecond, RenewDeadline: time.Second},
		Log: testr.New(t)}, testworld.K8s(t).Client)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(svc.Handler())
	t.Cleanup(hs.Close)
	if !run {
		return hs.URL
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("name service: %v", err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); !svc.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("name service holds no node id after 10s")
		}
	}
	return hs.URL
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
