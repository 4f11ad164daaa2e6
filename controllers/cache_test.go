package controllers

import (
	"context"
	"slices"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/test/testworld"
)

// TestCacheHoldsOnlyDESObjects starts informers with the manager's cache options on the real API
// server: Leases, Jobs and CronJobs that DES did not make (a kubelet's, another team's) never enter
// the cache, DES's own do.
func TestCacheHoldsOnlyDESObjects(t *testing.T) {
	e := newTestEnv(t)
	ours := map[string]string{protocol.LabelManagedBy: protocol.ManagedByDES}
	theirs := map[string]string{protocol.LabelManagedBy: "someone-else"}
	pod := corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
		Containers: []corev1.Container{{Name: "c", Image: "example.invalid/x"}}}}
	for _, l := range []map[string]string{ours, theirs, nil} {
		name := "des"
		switch {
		case l == nil:
			name = "unlabelled"
		case l[protocol.LabelManagedBy] != protocol.ManagedByDES:
			name = "other"
		}
		meta := metav1.ObjectMeta{Name: name, Labels: l}
		e.create(&coordinationv1.Lease{ObjectMeta: meta})
		suspended := true
		e.create(&batchv1.Job{ObjectMeta: meta, Spec: batchv1.JobSpec{Suspend: &suspended, Template: pod}})
		e.create(&batchv1.CronJob{ObjectMeta: meta, Spec: batchv1.CronJobSpec{Schedule: "@daily", Suspend: &suspended,
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: pod}}}})
	}

	kube := testworld.K8s(t)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	informers, err := cache.New(kube.Config, cache.Options{Scheme: testScheme, ByObject: CacheByObject(),
		DefaultNamespaces: map[string]cache.Config{e.ns: {}}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		t.Fatal("cache did not start")
	}
	for _, list := range []client.ObjectList{&coordinationv1.LeaseList{}, &batchv1.JobList{}, &batchv1.CronJobList{}} {
		if err := informers.List(ctx, list, client.InNamespace(e.ns)); err != nil {
			t.Fatalf("list %T from the cache: %v", list, err)
		}
		items, err := apimeta.ExtractList(list)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, o := range items {
			names = append(names, o.(client.Object).GetName())
		}
		if !slices.Equal(names, []string{"des"}) {
			t.Errorf("the cache holds %T %v, want only DES's [des]", list, names)
		}
		// A read by name of a foreign object finds nothing, as if it did not exist.
		var one client.Object
		switch list.(type) {
		case *coordinationv1.LeaseList:
			one = &coordinationv1.Lease{}
		case *batchv1.JobList:
			one = &batchv1.Job{}
		default:
			one = &batchv1.CronJob{}
		}
		if err := informers.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "other"}, one); err == nil {
			t.Errorf("the cache returned %T other, which DES did not make", one)
		}
	}
}
