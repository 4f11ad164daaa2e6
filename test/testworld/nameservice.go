package testworld

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/datavision/des/internal/assign"
	"github.com/datavision/des/internal/nodeid"
)

// StartNameService runs one name service replica in-process on the package's API server until the
// test ends and returns its URL. Its node id Lease is short (2 s), so losses show quickly. With run
// false it never claims a node id and answers 503, like a replica that lost its Lease.
func StartNameService(t *testing.T, prefix, identity string, run bool) string {
	t.Helper()
	kube := K8s(t)
	svc, err := assign.New(assign.Config{DefaultPrefix: prefix, DefaultShardBits: 12, RetryInterval: time.Second,
		Lease: nodeid.Options{Namespace: kube.NewNamespace(t), Identity: identity,
			LeaseDuration: 2 * time.Second, RenewInterval: 100 * time.Millisecond, RenewDeadline: time.Second},
		Log: testr.New(t)}, kube.Client)
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
