package controllers

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

func TestWarnNewTrouble(t *testing.T) {
	cond := func(typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: "because " + reason}
	}
	ready := cond(desv1.ConditionReady, metav1.ConditionTrue, "Ready")
	noSecret := cond(desv1.ConditionReady, metav1.ConditionFalse, "SecretNotFound")
	noTable := cond(desv1.ConditionReady, metav1.ConditionFalse, "TableNotFound")
	healthy := cond(desv1.ConditionDegraded, metav1.ConditionFalse, "NoFailures")
	refused := cond(desv1.ConditionDegraded, metav1.ConditionTrue, "JobCreateFailed")
	cases := []struct {
		name          string
		before, after []metav1.Condition
		want          []string
	}{
		{"first status, healthy", nil, []metav1.Condition{ready, healthy}, nil},
		{"first status, broken", nil, []metav1.Condition{noSecret}, []string{"Warning SecretNotFound because SecretNotFound"}},
		{"turned bad", []metav1.Condition{ready, healthy}, []metav1.Condition{noSecret, refused},
			[]string{"Warning SecretNotFound because SecretNotFound", "Warning JobCreateFailed because JobCreateFailed"}},
		{"still bad for the same reason: told once", []metav1.Condition{noSecret}, []metav1.Condition{noSecret}, nil},
		{"still bad for a new reason", []metav1.Condition{noSecret}, []metav1.Condition{noTable}, []string{"Warning TableNotFound because TableNotFound"}},
		{"recovered", []metav1.Condition{noSecret, refused}, []metav1.Condition{ready, healthy}, nil},
	}
	for _, c := range cases {
		rec := events.NewFakeRecorder(10)
		warnNewTrouble(rec, &desv1.DesShard{}, c.before, c.after, notReadyCheck, degradedCheck)
		close(rec.Events)
		var got []string
		for ev := range rec.Events {
			got = append(got, ev)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: events %q, want %q", c.name, got, c.want)
		}
	}
}
