package controllers

import (
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

// TestStrayClaimsGoBack: rows claimed by a container that is final or gone are returned to ready by
// the DesSource's periodic check (and the container is closed against a late writer); rows of a
// container whose writer may be alive stay claimed.
func TestStrayClaimsGoBack(t *testing.T) {
	cases := []struct {
		name     string
		phase    desv1.ContainerPhase
		deleted  bool
		returned bool
	}{
		{"writer may be alive", desv1.PhaseWriting, false, false},
		{"container rolled back", desv1.PhaseRolledBack, false, true},
		{"container deleted", desv1.PhaseWriting, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newCrashWorld(t, tc.phase)
			w.db.Exec(t, `UPDATE objects SET des_claimed_at = now() - interval '1 hour'`)
			if tc.deleted {
				w.get(w.con)
				controllerutil.RemoveFinalizer(w.con, protocol.FinalizerRecovery)
				if err := w.c.Update(w.ctx, w.con); err != nil {
					t.Fatal(err)
				}
				if err := w.c.Delete(w.ctx, w.con); err != nil {
					t.Fatal(err)
				}
			}
			w.reconcile(w.sourceReconciler(), "src")
			n, err := w.cat.Count(w.ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantClaimed, wantReady := int64(5), int64(0)
			if tc.returned {
				wantClaimed, wantReady = 0, 5
			}
			if n.Claimed != wantClaimed || n.Ready != wantReady {
				t.Fatalf("rows after the check: %+v, want %d claimed and %d ready", n, wantClaimed, wantReady)
			}
			open, err := w.cat.IsOpen(w.ctx, w.con.Name)
			if err != nil || open == tc.returned {
				t.Fatalf("container open = %v (%v) after the check", open, err)
			}
			warned := false
			for len(w.events.Events) > 0 {
				if ev := <-w.events.Events; strings.Contains(ev, string(desv1.ReasonStrayClaimsReturned)) {
					warned = true
				}
			}
			if warned != tc.returned {
				t.Fatalf("StrayClaimsReturned event seen = %v, want %v", warned, tc.returned)
			}
		})
	}
}
