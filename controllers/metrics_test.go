package controllers

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

func TestContainerPhaseCollector(t *testing.T) {
	e := newTestEnv(t)
	for i, phase := range []desv1.ContainerPhase{desv1.PhaseCommitted, desv1.PhaseCommitted, desv1.PhaseWriting} {
		c := &desv1.DesContainer{ObjectMeta: metav1.ObjectMeta{Name: "c" + string(rune('a'+i))},
			Spec: desv1.DesContainerSpec{ShardRef: "d", Day: "2026-11-26", Bucket: "archive", Key: fmt.Sprintf("k/2026-11-26/0000/c%016x/c%016x.des", i, i)}}
		e.create(c)
		c.Status.Phase = phase
		if err := e.c.Status().Update(e.ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := testutil.CollectAndFormat(&ContainerPhaseCollector{Reader: e.c}, expfmt.TypeTextPlain, "des_containers")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`des_containers{namespace="` + e.ns + `",phase="Committed"} 2`,
		`des_containers{namespace="` + e.ns + `",phase="Writing"} 1`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("metrics lack %s:\n%s", want, got)
		}
	}
}
