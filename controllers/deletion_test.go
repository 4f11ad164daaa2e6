package controllers

import (
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

func TestDeletionWait(t *testing.T) {
	con := func(name string, phase desv1.ContainerPhase, blocked string) desv1.DesContainer {
		c := desv1.DesContainer{}
		c.Name, c.Status.Phase = name, phase
		if blocked != "" {
			setStatusCondition(&c.Status.Conditions, desv1.ConditionDegraded, true, desv1.ReasonRecoveryBlocked, blocked, 1)
		}
		return c
	}
	cases := []struct {
		name       string
		containers []desv1.DesContainer
		leases     []string
		want       []string // substrings; none means nothing to wait for
	}{
		{"nothing", nil, nil, nil},
		{"only final containers", []desv1.DesContainer{con("a", desv1.PhaseCommitted, ""), con("b", desv1.PhaseRolledBack, "")}, nil, nil},
		{"an unfinished container", []desv1.DesContainer{con("a", desv1.PhaseCommitted, ""), con("b", desv1.PhaseWriting, "")},
			nil, []string{"1 unfinished containers", "b (Writing)"}},
		{"recovery blocked says why", []desv1.DesContainer{con("c", "", "catalog: connection refused")},
			nil, []string{"c (Pending): RecoveryBlocked: catalog: connection refused"}},
		{"a held Lease", nil, []string{"des-x-0001 (pod-a)"}, []string{"1 shard Leases held", "des-x-0001 (pod-a)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := deletionWait(tc.containers, tc.leases)
			if (got == "") != (len(tc.want) == 0) {
				t.Fatalf("deletionWait = %q, want %v", got, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Fatalf("deletionWait = %q, want it to say %q", got, w)
				}
			}
		})
	}
}

// TestDeletingADesShardRecoversItsContainersFirst is issue 12's item 4: deleting a DesShard whose
// packer died mid-container must not leave the container stuck behind its finalizer with its rows
// claimed. The DesShard stays until recovery has rolled the container back, then goes.
func TestDeletingADesShardRecoversItsContainersFirst(t *testing.T) {
	w := newCrashWorld(t, desv1.PhaseWriting)
	shards := w.shardReconciler()
	ds := &desv1.DesShard{}
	ds.Namespace, ds.Name = w.ns, "daily"
	w.reconcile(shards, "daily")
	w.get(ds)
	if !slices.Contains(ds.Finalizers, protocol.FinalizerContainers) {
		t.Fatalf("DesShard finalizers %v, want %s", ds.Finalizers, protocol.FinalizerContainers)
	}
	if err := w.c.Delete(w.ctx, ds); err != nil {
		t.Fatal(err)
	}
	w.reconcile(shards, "daily")
	w.get(ds)
	ready := meta.FindStatusCondition(ds.Status.Conditions, desv1.ConditionReady)
	if ready == nil || ready.Reason != string(desv1.ReasonDeleting) || !strings.Contains(ready.Message, w.con.Name) {
		t.Fatalf("Ready while deleting = %+v, want Deleting naming %s", ready, w.con.Name)
	}
	jobs := &batchv1.JobList{}
	if err := w.c.List(w.ctx, jobs, client.InNamespace(w.ns), client.MatchingLabels{protocol.LabelDesShard: "daily"}); err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs.Items {
		if j.DeletionTimestamp.IsZero() {
			t.Fatalf("Job %s of the deleted DesShard was not stopped", j.Name)
		}
	}
	w.reconcile(w.reconciler(), w.con.Name)
	if n, err := w.cat.Count(w.ctx); err != nil || n.Ready != 5 || n.Claimed != 0 {
		t.Fatalf("rows after recovery: %+v (%v), want 5 ready", n, err)
	}
	w.reconcile(shards, "daily")
	if err := w.c.Get(w.ctx, client.ObjectKeyFromObject(ds), ds); !apierrors.IsNotFound(err) {
		t.Fatalf("DesShard after its containers were recovered: %v, finalizers %v; want it gone", err, ds.Finalizers)
	}
}

// TestDeletingADesSourceWaitsForItsContainers: the DesSource (the catalog recovery needs) stays until
// the containers of its DesShards are final, and its DesShards start no Job meanwhile.
func TestDeletingADesSourceWaitsForItsContainers(t *testing.T) {
	w := newCrashWorld(t, desv1.PhaseUploaded)
	w.get(w.con)
	w.con.Labels[protocol.LabelSource] = "src"
	if err := w.c.Update(w.ctx, w.con); err != nil {
		t.Fatal(err)
	}
	sources := w.sourceReconciler()
	w.reconcile(sources, "src")
	src := &desv1.DesSource{}
	src.Namespace, src.Name = w.ns, "src"
	if err := w.c.Delete(w.ctx, src); err != nil {
		t.Fatal(err)
	}
	w.reconcile(sources, "src")
	w.get(src)
	if ready := meta.FindStatusCondition(src.Status.Conditions, desv1.ConditionReady); ready == nil || ready.Reason != string(desv1.ReasonDeleting) {
		t.Fatalf("Ready while deleting = %+v, want Deleting", ready)
	}
	w.reconcile(w.shardReconciler(), "daily")
	ds := &desv1.DesShard{}
	ds.Namespace, ds.Name = w.ns, "daily"
	w.get(ds)
	if ready := meta.FindStatusCondition(ds.Status.Conditions, desv1.ConditionReady); ready == nil || ready.Reason != string(desv1.ReasonSourceDeleting) {
		t.Fatalf("DesShard Ready while its source is deleted = %+v, want SourceDeleting", ready)
	}
	if ds.Status.Runs != 0 {
		t.Fatalf("the DesShard of a deleted source started %d runs", ds.Status.Runs)
	}
	w.reconcile(w.reconciler(), w.con.Name)
	w.reconcile(sources, "src")
	if err := w.c.Get(w.ctx, client.ObjectKeyFromObject(src), src); !apierrors.IsNotFound(err) {
		t.Fatalf("DesSource after its containers were recovered: %v; want it gone", err)
	}
}
