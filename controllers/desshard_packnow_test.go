package controllers

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/fill"
	"github.com/datavision/des/internal/protocol"
)

func TestPackNowRequest(t *testing.T) {
	shards := []int32{1, 2, 3}
	tests := []struct {
		name    string
		ann     map[string]string
		asked   bool
		want    []int32
		wantErr bool
	}{
		{"no annotation", map[string]string{"other": "x"}, false, nil, false},
		{"empty means all", map[string]string{protocol.AnnotationPackNow: ""}, true, shards, false},
		{"all", map[string]string{protocol.AnnotationPackNow: " all "}, true, shards, false},
		{"some", map[string]string{protocol.AnnotationPackNow: "3, 1"}, true, []int32{3, 1}, false},
		{"not served", map[string]string{protocol.AnnotationPackNow: "1,9"}, true, nil, true},
		{"not a list", map[string]string{protocol.AnnotationPackNow: "1-3"}, true, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			asked, got, err := packNowRequest(tc.ann, shards)
			if asked != tc.asked || !slices.Equal(got, tc.want) || (err != nil) != tc.wantErr {
				t.Fatalf("got %v %v %v, want %v %v (error %v)", asked, got, err, tc.asked, tc.want, tc.wantErr)
			}
			if tc.name == "not served" && !errors.Is(err, errNotServed) {
				t.Fatalf("error %v, want errNotServed", err)
			}
		})
	}
}

func TestPackNowShards(t *testing.T) {
	pending := map[int32]fill.Stats{1: {Rows: 1}, 2: {Rows: 0}}
	if got := packNowShards([]int32{1, 2, 3}, pending, map[int32]int64{3: 1}); !slices.Equal(got, []int32{1, 3}) {
		t.Errorf("got %v, want [1 3]: shard 2 has nothing to pack", got)
	}
	if got := packNowShards([]int32{1, 2}, nil, nil); !slices.Equal(got, []int32{1, 2}) {
		t.Errorf("catalog unknown: got %v, want every shard asked for", got)
	}
}

// TestPackNowRunsOnceWhateverTheFill: a shard far below the fill policy is packed at once when the
// annotation asks for it, mid-interval; the annotation is then gone, the next reconcile starts
// nothing, and a request the DesShard cannot honour is refused in a Warning event and removed.
func TestPackNowRunsOnceWhateverTheFill(t *testing.T) {
	e := newTestEnv(t)
	db := e.migratedSource(catalog.Postgres, nil)
	now := e.clock.Now()
	for shard := 1; shard <= 2; shard++ {
		db.Exec(t, `INSERT INTO objects (source_key, size, status, des_name, shard, created_at) VALUES ($1, 10, 'ready', $2, $3, $4)`,
			fmt.Sprintf("k/%d", shard), fmt.Sprintf("N_%d", shard), shard, now.UTC())
	}
	ds := sampleShard("now", "src", 1, 2, 3)
	ds.Spec.ShardsPerJob, ds.Spec.Interval = 1, metav1.Duration{Duration: time.Hour}
	ds.Spec.Limits = desv1.ContainerLimits{MinFiles: 1000, MaxWait: metav1.Duration{Duration: 24 * time.Hour}}
	e.create(ds)
	r := e.shardReconciler()
	e.reconcile(r, "now")
	if got := e.jobs("now"); len(got) != 0 {
		t.Fatalf("jobs = %v before pack-now; the fill policy should hold every shard", got)
	}

	annotate := func(v string) {
		t.Helper()
		e.get(ds)
		if ds.Annotations == nil {
			ds.Annotations = map[string]string{}
		}
		ds.Annotations[protocol.AnnotationPackNow] = v
		if err := e.c.Update(e.ctx, ds); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Step(5 * time.Minute) // mid-interval
	annotate("2,3")
	e.reconcile(r, "now")
	if got, want := e.jobs("now"), map[string]string{"now-r1-g0": "2"}; !equalMaps(got, want) {
		t.Fatalf("jobs = %v, want %v (shard 3 has no ready row)", got, want)
	}
	e.get(ds)
	if _, still := ds.Annotations[protocol.AnnotationPackNow]; still || ds.Status.Runs != 1 {
		t.Fatalf("after the run: annotations %v, runs %d; want the annotation removed and run 1 recorded", ds.Annotations, ds.Status.Runs)
	}
	if !hasEvent(e.events, string(desv1.ReasonPackNow)) {
		t.Error("no PackNow event")
	}
	e.reconcile(r, "now")
	if got := e.jobs("now"); len(got) != 1 {
		t.Fatalf("jobs = %v: pack-now was honoured twice", got)
	}

	annotate("7")
	e.reconcile(r, "now")
	e.get(ds)
	if _, still := ds.Annotations[protocol.AnnotationPackNow]; still || len(e.jobs("now")) != 1 {
		t.Fatalf("a refused request: annotations %v, jobs %v", ds.Annotations, e.jobs("now"))
	}
	if ev := e.expectEvent(desv1.ReasonPackNowRefused); !strings.Contains(ev, "shard 7") {
		t.Errorf("event %q does not name the shard", ev)
	}
}
