package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

// setStatusCondition sets one condition; every reconciler writes its conditions through it.
func setStatusCondition(conds *[]metav1.Condition, typ string, ok bool, reason desv1.ConditionReason, message string, gen int64) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(conds, metav1.Condition{Type: typ, Status: status, Reason: string(reason), Message: message, ObservedGeneration: gen})
}

// conditionCheck names a condition and the status that means a person must look (Ready=False,
// Degraded=True).
type conditionCheck struct {
	typ string
	bad metav1.ConditionStatus
}

var (
	notReadyCheck = conditionCheck{desv1.ConditionReady, metav1.ConditionFalse}
	degradedCheck = conditionCheck{desv1.ConditionDegraded, metav1.ConditionTrue}
)

// warnNewTrouble emits one Warning event, with the condition's reason and message, for each check
// that turned bad between before and after, or stayed bad for another reason. A problem is told once
// when it appears, not at every reconcile; the condition keeps saying it meanwhile.
func warnNewTrouble(rec events.EventRecorder, obj runtime.Object, before, after []metav1.Condition, checks ...conditionCheck) {
	for _, c := range checks {
		now := meta.FindStatusCondition(after, c.typ)
		if now == nil || now.Status != c.bad {
			continue
		}
		if was := meta.FindStatusCondition(before, c.typ); was != nil && was.Status == c.bad && was.Reason == now.Reason {
			continue
		}
		rec.Eventf(obj, nil, corev1.EventTypeWarning, now.Reason, c.typ, "%s", now.Message)
	}
}
