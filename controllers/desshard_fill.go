package controllers

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/fill"
)

// lastCheck is when the last run checked the shards: the fill check's time, or for a DesShard whose
// status predates the fill policy, its last scheduled run.
func lastCheck(st *desv1.DesShardStatus) *metav1.Time {
	if st.Fill != nil && st.Fill.CheckedAt != nil {
		return st.Fill.CheckedAt
	}
	return st.LastScheduleTime
}

// markChecked records a run's check, whether or not it started Jobs.
func markChecked(st *desv1.DesShardStatus, now time.Time) {
	if st.Fill == nil {
		st.Fill = &desv1.FillStatus{}
	}
	st.Fill.CheckedAt = &metav1.Time{Time: now}
}

// dueShards are the shards a run gives to packers: those the fill policy finds due and those with
// committed containers whose sources are due for deletion (the packer deletes them after packing), or
// every shard when the catalog could not be asked (decisions nil), so that a catalog outage shows up
// as failing packers and not as a DesShard that silently packs nothing.
func dueShards(shards []int32, decisions map[int32]fill.Decision, reclaim map[int32]int64) []int32 {
	if decisions == nil {
		return shards
	}
	var due []int32
	for _, id := range shards {
		if decisions[id].Due || reclaim[id] > 0 {
			due = append(due, id)
		}
	}
	return due
}

// summarizeFill counts due and waiting shards and the pending rows for status.fill, keeping the time
// of the last check. Nothing is said when the catalog could not be asked: the last count stays, with
// its time.
func summarizeFill(st *desv1.DesShardStatus, pending map[int32]fill.Stats, decisions map[int32]fill.Decision, now time.Time) {
	if decisions == nil {
		return
	}
	if st.Fill == nil {
		st.Fill = &desv1.FillStatus{}
	}
	f := st.Fill
	f.DueShards, f.WaitingShards, f.NextPackBy = 0, 0, nil
	f.PendingRows, f.PendingBytes, f.CountedAt = 0, 0, &metav1.Time{Time: now}
	for _, p := range pending {
		f.PendingRows += p.Rows
		f.PendingBytes += p.Bytes
	}
	for _, d := range decisions {
		switch {
		case d.Due:
			f.DueShards++
		case d.Reason == fill.Waiting:
			f.WaitingShards++
			if f.NextPackBy == nil || d.PackBy.Before(f.NextPackBy.Time) {
				f.NextPackBy = &metav1.Time{Time: d.PackBy}
			}
		}
	}
}

// shardFill is one shard's pending rows and fill verdict, for its ShardStatus.
func shardFill(s *desv1.ShardStatus, st fill.Stats, d fill.Decision) {
	s.PendingRows, s.PendingBytes, s.Fill, s.PackBy = st.Rows, st.Bytes, "", nil
	switch {
	case d.Due:
		s.Fill = desv1.FillReason(d.Reason)
	case d.Reason == fill.Waiting:
		s.Fill = desv1.FillWaiting
	}
	// Due shards keep their pack-by too: one still unpacked past it holds late rows, which the
	// controller's des_desshard_pack_overdue_seconds reports.
	if !d.PackBy.IsZero() {
		s.PackBy = &metav1.Time{Time: d.PackBy}
	}
}
