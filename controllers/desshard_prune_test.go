package controllers

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

func TestContainersOverLimit(t *testing.T) {
	base := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	// c builds a container of shard finished at minute m (m < 0: still writing).
	c := func(name string, shard int32, phase desv1.ContainerPhase, m int) desv1.DesContainer {
		d := desv1.DesContainer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: desv1.DesContainerSpec{Shard: shard}}
		d.Status.Phase = phase
		if m >= 0 {
			at := metav1.NewTime(base.Add(time.Duration(m) * time.Minute))
			if phase == desv1.PhaseCommitted {
				d.Status.CommittedAt = &at
			} else {
				d.Status.Conditions = []metav1.Condition{{Type: desv1.ConditionFinished, Status: metav1.ConditionTrue, LastTransitionTime: at}}
			}
		}
		return d
	}
	deleting := c("deleting", 0, desv1.PhaseCommitted, 0)
	deleting.DeletionTimestamp = &metav1.Time{Time: base}
	ok, rb := desv1.PhaseCommitted, desv1.PhaseRolledBack
	cases := []struct {
		name  string
		in    []desv1.DesContainer
		limit int
		want  []string
	}{
		{"under the limit", []desv1.DesContainer{c("a", 0, ok, 1), c("b", 0, ok, 2)}, 2, nil},
		{"oldest first", []desv1.DesContainer{c("c", 0, ok, 3), c("a", 0, ok, 1), c("b", 0, ok, 2), c("d", 0, ok, 4)}, 2,
			[]string{"a", "b"}},
		{"same time: by name", []desv1.DesContainer{c("b", 0, ok, 1), c("a", 0, ok, 1), c("z", 0, ok, 9)}, 2, []string{"a"}},
		{"each shard's newest success and failure stay", []desv1.DesContainer{
			c("s0-old", 0, ok, 1), c("s0-new", 0, ok, 5), c("s0-fail", 0, rb, 2),
			c("s1-only", 1, ok, 0), c("s1-fail-old", 1, desv1.PhaseFailed, 1), c("s1-fail-new", 1, rb, 3),
		}, 1, []string{"s0-old", "s1-fail-old"}},
		{"writing and deleting ones are not counted nor picked", []desv1.DesContainer{
			c("w", 0, desv1.PhaseWriting, -1), c("u", 0, desv1.PhaseUploaded, -1), deleting,
			c("a", 0, ok, 1), c("b", 0, ok, 2), c("n", 0, ok, 3),
		}, 2, []string{"a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, d := range containersOverLimit(tc.in, tc.limit) {
				got = append(got, d.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("deletes %v, want %v", got, tc.want)
			}
		})
	}
}

// TestReconcileDeletesContainersOverTheLimit: a DesShard with more finished DesContainers than
// spec.maxContainers loses the oldest at its next reconcile, keeps the rest and says so in an event.
func TestReconcileDeletesContainersOverTheLimit(t *testing.T) {
	e := newTestEnv(t)
	e.create(sampleSource("src"))
	ds := sampleShard("daily", "src", 0)
	ds.Spec.MaxContainers = 2
	e.create(ds)
	day := e.clock.Now().UTC()
	var names []string
	for i := range 4 {
		id := protocol.NewContainerID(day.Add(time.Duration(i) * time.Millisecond))
		c := &desv1.DesContainer{
			ObjectMeta: metav1.ObjectMeta{Name: protocol.ContainerName("daily", id),
				Labels: map[string]string{protocol.LabelDesShard: "daily", protocol.LabelShard: "0"}},
			Spec: desv1.DesContainerSpec{ShardRef: "daily", Shard: 0, Day: day.Format(time.DateOnly),
				Bucket: ds.Spec.Archive.Bucket, Key: protocol.ContainerKey("des", day, 0, id)},
		}
		e.create(c)
		c.Status.Phase, c.Status.CommittedAt = desv1.PhaseCommitted, &metav1.Time{Time: day.Add(time.Duration(i) * time.Minute)}
		if err := e.c.Status().Update(e.ctx, c); err != nil {
			t.Fatal(err)
		}
		names = append(names, c.Name)
	}
	e.reconcile(e.shardReconciler(), "daily")
	list := &desv1.DesContainerList{}
	if err := e.c.List(e.ctx, list, client.InNamespace(e.ns)); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, c := range list.Items {
		left = append(left, c.Name)
	}
	slices.Sort(left)
	if want := names[2:]; !slices.Equal(left, want) {
		t.Fatalf("DesContainers left %v, want the newest two %v", left, want)
	}
	if !hasEvent(e.events, string(desv1.ReasonContainersPruned)) {
		t.Error("no ContainersPruned event")
	}
}

// hasEvent drains the recorded events and reports whether one names reason.
func hasEvent(rec *events.FakeRecorder, reason string) bool {
	found := false
	for len(rec.Events) > 0 {
		if strings.Contains(<-rec.Events, reason) {
			found = true
		}
	}
	return found
}
