package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

// errSuspended: pack-now on a suspended DesShard, which the controller would refuse.
var errSuspended = errors.New("the DesShard is suspended: set spec.suspend to false first")

// runPackNow asks the controller for one run now by setting the DesShard's pack-now annotation,
// and with --wait (the default) waits until the controller took it and says what it did.
func runPackNow(e *env, args []string) int {
	fs := commandFlags(e, "pack-now", "DESSHARD [--shards LIST] [--wait=false]")
	shards := fs.String("shards", "", "comma-separated shard `ids` (default: every shard of the DesShard)")
	waitFor := fs.Bool("wait", true, "wait until the controller honoured the request")
	timeout := fs.Duration("timeout", time.Minute, "how long --wait waits")
	pos, code, ok := parseArgs(e, fs, args, 1, 1)
	if !ok {
		return code
	}
	// The list is checked here too, so a typo is answered at once and not in an event.
	if _, err := protocol.ParseShardList(*shards); err != nil {
		fmt.Fprintln(e.stderr, "kubectl des pack-now: --shards:", err)
		return exitUsage
	}
	ds := &desv1.DesShard{}
	key := client.ObjectKey{Namespace: e.namespace, Name: pos[0]}
	if err := get(e, "desshards", key.Name, ds); err != nil {
		return fail(e, "pack-now", err)
	}
	if ds.Spec.Suspend {
		return fail(e, "pack-now", errSuspended)
	}
	runs := ds.Status.Runs
	base := ds.DeepCopy()
	if ds.Annotations == nil {
		ds.Annotations = map[string]string{}
	}
	value := *shards
	if value == "" {
		value = "all"
	}
	ds.Annotations[protocol.AnnotationPackNow] = value
	if err := e.kube.Patch(e.ctx, ds, client.MergeFrom(base)); err != nil {
		return fail(e, "pack-now", fmt.Errorf("annotate DesShard %s (your RBAC must allow patch on desshards): %w", ds.Name, err))
	}
	fmt.Fprintf(e.stdout, "desshard/%s: asked for a run of shards %s now\n", ds.Name, value)
	if !*waitFor {
		return exitOK
	}
	return waitPackNow(e, key, runs, *timeout)
}

// waitPackNow polls the DesShard until the controller removed the annotation, then reports whether
// a run started (status.runs grew) and its Jobs.
func waitPackNow(e *env, key client.ObjectKey, runsBefore int64, timeout time.Duration) int {
	ds := &desv1.DesShard{}
	err := wait.PollUntilContextTimeout(e.ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := e.kube.Get(ctx, key, ds); err != nil {
			return false, err
		}
		_, pending := ds.Annotations[protocol.AnnotationPackNow]
		return !pending, nil
	})
	if err != nil {
		return fail(e, "pack-now", fmt.Errorf("the controller did not take the request within %s (is it running? kubectl -n des-system get pods): %w", timeout, err))
	}
	// The controller removes the annotation, then records the run in the status at the end of the
	// same pass: give that pass a moment.
	_ = wait.PollUntilContextTimeout(e.ctx, 200*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := e.kube.Get(ctx, key, ds); err != nil {
			return false, err
		}
		return ds.Status.Runs > runsBefore, nil
	})
	if ds.Status.Runs == runsBefore {
		fmt.Fprintf(e.stdout, "desshard/%s: no run started: nothing to pack, packers hold the shards, or the request was refused (kubectl describe desshard %s)\n", ds.Name, ds.Name)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "desshard/%s: run %d started (kubectl get jobs -l %s=%s,%s=%d)\n", ds.Name, ds.Status.Runs,
		protocol.LabelDesShard, ds.Name, protocol.LabelRun, ds.Status.Runs)
	return exitOK
}
