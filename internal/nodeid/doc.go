// Package nodeid gives a process exclusive use of one DES naming node id (0..255) for as long as it holds
// a coordination.k8s.io/v1 Lease named des-name-node-<id>. The name-assignment service and the marker both
// claim their node id this way, so that no two generators ever share a node id at the same time.
//
// Holding the Lease is internal/lease's job, the same code and the same definition of "lost" as shard
// locks; this package adds what only node ids need: the choice among candidate ids and the watermark,
// written through the lease package's Decorate hook rather than by a renew loop of its own.
//
// # Claiming
//
// Acquire lists the node Leases of a namespace (by label) and hands them to lease.Claim in turn: a
// missing Lease is created, a released or expired one is taken with an Update carrying the
// resourceVersion that was read, and a Lease another holder renews is never taken. Only listed Leases
// are written, so an object of the same name that lacks our labels stays untouched.
//
// # The watermark
//
// A node id is only half of uniqueness: a new holder must also not reuse a millisecond the previous holder
// issued names in, and hosts' clocks differ. Every Lease therefore carries the annotation
// AnnotationUsedUntil, a Unix millisecond that the holder promises none of its names exceeds. The holder
// raises it on every renewal to at least now + leaseDuration, never lowering it while it holds, and
// admits a batch of names (Claim.Admit) only while the Lease is held and the batch's latest millisecond
// is within the watermark of the last successful write. The next holder starts its generator after the
// watermark (Claim.After), so its names are later than every name of the previous holder, whatever the
// two clocks say. Release lowers the watermark to the last millisecond actually admitted, so an orderly
// hand-over costs no clock lead.
//
// A Lease that does not exist (first use, or someone deleted it) has no watermark; its claimer starts
// leaseDuration ahead of its own clock, which covers a holder that has not yet noticed the deletion, as
// long as the clocks agree within a lease duration.
//
// # Losing
//
// A claim ends when its lease.Hold does (see internal/lease: Lease deleted, taken over, or not renewed
// for RenewDeadline) or at Release: Lost is closed, Context is cancelled and Admit refuses every later
// batch. Admit asks the hold, which checks the renew deadline itself, so a starved renewal goroutine
// cannot let a stale claim issue names; Release excludes Admit while it marks the claim released, so no
// admitted name lies beyond the watermark it writes.
package nodeid
