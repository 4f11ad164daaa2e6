package controllers

import (
	"fmt"
	"testing"
	"time"
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
