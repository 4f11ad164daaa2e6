package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

// runStatus prints the namespace's (or every namespace's) DesSources, DesShards and their
// containers by phase, from their status: one request per kind, whatever the number of containers.
func runStatus(e *env, args []string) int {
	fs := commandFlags(e, "status", "[-A]")
	if _, code, ok := parseArgs(e, fs, args, 0, 0); !ok {
		return code
	}
	sources := &desv1.DesSourceList{}
	if err := list(e, "dessources", sources); err != nil {
		return fail(e, "status", err)
	}
	shards := &desv1.DesShardList{}
	if err := list(e, "desshards", shards); err != nil {
		return fail(e, "status", err)
	}
	now := time.Now()
	if len(sources.Items)+len(shards.Items) == 0 {
		fmt.Fprintf(e.stdout, "No DesSources or DesShards in %s.\n", e.scope())
		return exitOK
	}
	writeSources(e.stdout, sources.Items, e.allNamespaces, now)
	fmt.Fprintln(e.stdout)
	writeShards(e.stdout, shards.Items, e.allNamespaces, now)
	fmt.Fprintln(e.stdout)
	writeContainers(e.stdout, shards.Items, e.allNamespaces)
	return exitOK
}

func (e *env) scope() string {
	if e.allNamespaces {
		return "any namespace"
	}
	return "namespace " + e.namespace
}

// table is a tabwriter with an optional NAMESPACE column first.
type table struct {
	w      *tabwriter.Writer
	withNS bool
}

func newTable(out io.Writer, withNS bool, header ...string) *table {
	t := &table{w: tabwriter.NewWriter(out, 0, 4, 2, ' ', 0), withNS: withNS}
	if withNS {
		header = append([]string{"NAMESPACE"}, header...)
	}
	fmt.Fprintln(t.w, strings.Join(header, "\t"))
	return t
}

func (t *table) row(ns string, cells ...any) {
	parts := make([]string, 0, len(cells)+1)
	if t.withNS {
		parts = append(parts, ns)
	}
	for _, c := range cells {
		parts = append(parts, fmt.Sprint(c))
	}
	fmt.Fprintln(t.w, strings.Join(parts, "\t"))
}

func (t *table) flush() { _ = t.w.Flush() }

func writeSources(out io.Writer, sources []desv1.DesSource, withNS bool, now time.Time) {
	fmt.Fprintln(out, "SOURCES")
	t := newTable(out, withNS, "NAME", "READY", "UNNAMED", "READY-ROWS", "CLAIMED", "PACKED", "FAILED", "CONTAINERS", "COUNTED", "PROBLEM")
	for i := range sources {
		s := &sources[i]
		r := s.Status.Rows
		if r == nil {
			r = &desv1.RowCounts{}
		}
		t.row(s.Namespace, s.Name, condStatus(s.Status.Conditions, desv1.ConditionReady), r.Unnamed, r.Ready, r.Claimed, r.Packed, r.Failed,
			s.Status.CommittedContainers, ago(r.CountedAt, now), problem(s.Status.Conditions))
	}
	t.flush()
}

func writeShards(out io.Writer, shards []desv1.DesShard, withNS bool, now time.Time) {
	fmt.Fprintln(out, "SHARDS")
	t := newTable(out, withNS, "NAME", "SOURCE", "SHARDS", "READY", "JOBS", "DUE", "WAITING", "PENDING-ROWS", "PACK-BY", "LAST-RUN", "PROBLEM")
	for i := range shards {
		d := &shards[i]
		f := d.Status.Fill
		if f == nil {
			f = &desv1.FillStatus{}
		}
		ready := condStatus(d.Status.Conditions, desv1.ConditionReady)
		if d.Spec.Suspend {
			ready += " (suspended)"
		}
		t.row(d.Namespace, d.Name, d.Spec.SourceRef, d.Status.ShardCount, ready, d.Status.ActiveJobs, f.DueShards, f.WaitingShards,
			f.PendingRows, until(f.NextPackBy, now), ago(d.Status.LastScheduleTime, now), problem(d.Status.Conditions))
	}
	t.flush()
}

// writeContainers counts each DesShard's DesContainers by phase, as its status does.
func writeContainers(out io.Writer, shards []desv1.DesShard, withNS bool) {
	fmt.Fprintln(out, "CONTAINERS")
	phases := []desv1.ContainerPhase{desv1.PhasePending, desv1.PhaseWriting, desv1.PhaseUploaded, desv1.PhaseCommitted, desv1.PhaseRolledBack, desv1.PhaseFailed}
	header := []string{"DESSHARD"}
	for _, p := range phases {
		header = append(header, strings.ToUpper(string(p)))
	}
	t := newTable(out, withNS, header...)
	for i := range shards {
		d := &shards[i]
		cells := []any{d.Name}
		for _, p := range phases {
			cells = append(cells, d.Status.Containers[string(p)])
		}
		t.row(d.Namespace, cells...)
	}
	t.flush()
}

func condStatus(conds []metav1.Condition, typ string) string {
	if c := meta.FindStatusCondition(conds, typ); c != nil {
		return string(c.Status)
	}
	return "Unknown"
}

// problem is the first condition that needs a person: Ready false, or Degraded true, as
// "Reason: message"; "-" when there is none.
func problem(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, desv1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse {
		return c.Reason + ": " + shorten(c.Message, 80)
	}
	if c := meta.FindStatusCondition(conds, desv1.ConditionDegraded); c != nil && c.Status == metav1.ConditionTrue {
		return c.Reason + ": " + shorten(c.Message, 80)
	}
	return "-"
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// ago is a past time as kubectl shows ages ("12s", "5m"); "-" when unset.
func ago(t *metav1.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	return human(now.Sub(t.Time)) + " ago"
}

// until is a future time as "in 5m" (or "now" once passed); "-" when unset.
func until(t *metav1.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	if d := t.Sub(now); d > 0 {
		return "in " + human(d)
	}
	return "now"
}

func human(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
