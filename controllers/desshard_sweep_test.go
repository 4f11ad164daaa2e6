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
	const dayPrefix = "arch/2026-11-26/"
	id := func(n int) string { return fmt.Sprintf("c%016x", n) }
	prefix := func(shard string, n int) string { return dayPrefix + shard + "/" + id(n) }
	key := func(n int) string { return prefix("0001", n) + "/" + id(n) + ".des" } // the current layout
	legacy := func(n int) string { return prefix("0001", n) + ".des" }            // the layout before it
	big := func(n int, name string) string { return prefix("0001", n) + "/_bigFiles/" + name }
	type want bool
	const keep, orphan want = false, true
	cases := []struct {
		why  string
		item archiveItem
		want want
	}{
		{"committed", archiveItem{Key: key(1), Time: old}, keep},
		{"its big payload", archiveItem{Key: big(1, "N_1.pdf"), Time: old}, keep},
		{"committed, legacy layout", archiveItem{Key: legacy(2), Time: old}, keep},
		{"its big payload, under the same prefix", archiveItem{Key: big(2, "N_2.pdf"), Time: old}, keep},
		{"nobody's", archiveItem{Key: key(3), Time: old}, orphan},
		{"nobody's big payload", archiveItem{Key: big(3, "N_3"), Time: old}, orphan},
		{"nobody's, legacy layout", archiveItem{Key: legacy(4), Time: old}, orphan},
		{"nobody's big payload, legacy layout", archiveItem{Key: big(4, "N_4"), Time: old}, orphan},
		{"upload of a live container", archiveItem{Key: key(5), UploadID: "u5", Time: old}, keep},
		{"big payload of a live container", archiveItem{Key: big(5, "N_5"), Time: old}, keep},
		{"upload of a live legacy container", archiveItem{Key: legacy(6), UploadID: "u6", Time: old}, keep},
		{"stray upload of a committed key", archiveItem{Key: key(1), UploadID: "u1", Time: old}, orphan},
		{"stray upload of a committed legacy key", archiveItem{Key: legacy(2), UploadID: "u2", Time: old}, orphan},
		{"too young", archiveItem{Key: key(7), Time: fresh}, keep},
		{"another DesShard's shard", archiveItem{Key: prefix("0002", 8) + "/" + id(8) + ".des", Time: old}, keep},
		{"not DES's", archiveItem{Key: dayPrefix + "0001/README.txt", Time: old}, keep},
		{"not DES's, in a container's folder", archiveItem{Key: prefix("0001", 3) + "/notes.des", Time: old}, keep},
		{"not DES's, a v1 shard-wide _bigFiles", archiveItem{Key: dayPrefix + "0001/_bigFiles/x", Time: old}, keep},
	}
	var items, wantOut []archiveItem
	for _, c := range cases {
		items = append(items, c.item)
		if c.want == orphan {
			wantOut = append(wantOut, c.item)
		}
	}
	live := map[string]bool{prefix("0001", 5): true, prefix("0001", 6): true}
	committed := map[string]bool{prefix("0001", 1): true, prefix("0001", 2): true}
	got := orphans(items, dayPrefix, map[string]bool{"0001": true}, live, committed, now, time.Hour)
	if fmt.Sprint(got) != fmt.Sprint(wantOut) {
		gotSet := map[archiveItem]bool{}
		for _, it := range got {
			gotSet[it] = true
		}
		for _, c := range cases {
			if gotSet[c.item] != bool(c.want) {
				t.Errorf("%s (%s): orphan = %v, want %v", c.why, c.item.Key, gotSet[c.item], c.want)
			}
		}
		t.Fatalf("orphans =\n%v\nwant\n%v", got, wantOut)
	}
}

func TestAccountedPrefixes(t *testing.T) {
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	con := func(id string, phase desv1.ContainerPhase, key string) desv1.DesContainer {
		c := desv1.DesContainer{ObjectMeta: metav1.ObjectMeta{Name: protocol.ContainerName("daily", id)},
			Spec: desv1.DesContainerSpec{ShardRef: "daily", Shard: 1, Day: "2026-11-26", Key: key}}
		c.Status.Phase = phase
		return c
	}
	own := func(id string) string { return protocol.ContainerKey("arch", day, 1, id) }
	legacy := func(id string) string { return protocol.LegacyContainerKey("arch", day, 1, id) }
	prefix := func(id string) string { return protocol.ContainerPrefix("arch", day, 1, id) }
	const a, b, c, d, e, f = "c0000000000000001", "c0000000000000002", "c0000000000000003", "c0000000000000004", "c0000000000000005", "c0000000000000006"
	got := accountedPrefixes("arch", []desv1.DesContainer{
		con(a, desv1.PhaseWriting, own(a)),
		con(b, desv1.PhaseRolledBack, own(b)),         // recovery removed its object: debris is the sweep's
		con(c, desv1.PhaseFailed, own(c)),             // a person decides, with the object as evidence
		con(d, desv1.PhaseWriting, "elsewhere/x.des"), // a spec naming another key: its real prefix stays safe
		con(e, desv1.PhaseCommitted, own(e)),          // the catalog's record keeps its objects; a stray upload goes
		con(f, desv1.PhaseUploaded, legacy(f)),        // written before the current layout: the same prefix
	})
	want := map[string]bool{prefix(a): true, prefix(c): true, "elsewhere/x": true, prefix(d): true, prefix(f): true}
	if !maps.Equal(got, want) {
		t.Fatalf("accountedPrefixes = %v\nwant %v", got, want)
	}
}
