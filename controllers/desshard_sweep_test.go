package controllers

import (
	"fmt"
	"maps"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

func TestOrphans(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	old, fresh := now.Add(-2*time.Hour), now.Add(-time.Minute)
	day := "arch/2026-11-26/"
	items := []archiveItem{
		{Key: day + "0001/c1.des", Time: old},                 // committed: keep
		{Key: day + "0001/c1/_bigFiles/N_1.pdf", Time: old},   // its big payload: keep
		{Key: day + "0001/c2.des", Time: old},                 // nobody's: orphan
		{Key: day + "0001/c2/_bigFiles/N_2", Time: old},       // nobody's big payload: orphan
		{Key: day + "0001/c3.des", UploadID: "u3", Time: old}, // upload of a live container: keep
		{Key: day + "0001/c1.des", UploadID: "u1", Time: old}, // stray upload of a committed key: orphan
		{Key: day + "0001/c4.des", Time: fresh},               // too young: keep
		{Key: day + "0002/c5.des", Time: old},                 // another DesShard's shard: keep
		{Key: day + "0001/README.txt", Time: old},             // not DES's: keep
	}
	live := map[string]bool{day + "0001/c3.des": true}
	committed := map[string]bool{day + "0001/c1.des": true}
	got := orphans(items, day, map[string]bool{"0001": true}, live, committed, now, time.Hour)
	want := "[{arch/2026-11-26/0001/c2.des  " + old.String() + "} {arch/2026-11-26/0001/c2/_bigFiles/N_2  " + old.String() +
		"} {arch/2026-11-26/0001/c1.des u1 " + old.String() + "}]"
	if fmt.Sprint(got) != want {
		t.Fatalf("orphans =\n%v\nwant\n%v", got, want)
	}
}

func TestAccountedKeys(t *testing.T) {
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	con := func(id string, phase desv1.ContainerPhase, key string) desv1.DesContainer {
		c := desv1.DesContainer{ObjectMeta: metav1.ObjectMeta{Name: protocol.ContainerName("daily", id)},
			Spec: desv1.DesContainerSpec{ShardRef: "daily", Shard: 1, Day: "2026-11-26", Key: key}}
		c.Status.Phase = phase
		return c
	}
	own := func(id string) string { return protocol.ContainerKey("arch", day, 1, id) }
	const a, b, c, d, e = "c0000000000000001", "c0000000000000002", "c0000000000000003", "c0000000000000004", "c0000000000000005"
	got := accountedKeys("arch", []desv1.DesContainer{
		con(a, desv1.PhaseWriting, own(a)),
		con(b, desv1.PhaseRolledBack, own(b)),         // recovery removed its object: debris is the sweep's
		con(c, desv1.PhaseFailed, own(c)),             // a person decides, with the object as evidence
		con(d, desv1.PhaseWriting, "elsewhere/x.des"), // a spec naming another key: its real key stays safe
		con(e, desv1.PhaseCommitted, own(e)),          // the catalog's record keeps its object; a stray upload goes
	})
	want := map[string]bool{own(a): true, own(c): true, "elsewhere/x.des": true, own(d): true}
	if !maps.Equal(got, want) {
		t.Fatalf("accountedKeys = %v\nwant %v", got, want)
	}
}
