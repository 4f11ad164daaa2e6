// Package nodeid gives a process exclusive use of one DES naming node id (0..255) for as long as it holds
// a coordination.k8s.io/v1 Lease named des-name-node-<id>. The name-assignment service and the marker both
// claim their node id this way, so that no two generators ever share a node id at the same time.
//
// # Claiming
//
// Acquire lists the node Leases of a namespace and tries node ids in turn: a missing Lease is created, a
// released or expired one (renewTime + leaseDuration has passed) is taken with an Update carrying the
// resourceVersion that was read. The API server accepts exactly one Create or one Update of a given
// version, so two claimers never both win a node id. A Lease that another holder renews is never taken,
// whoever that holder is (even a previous incarnation of the same pod: it might still be running).
//
// # The watermark
//
// A node id is only half of uniqueness: a new holder must also not reuse a millisecond the previous holder
// issued names in, and hosts' clocks differ. Every Lease therefore carries the annotation
// AnnotationUsedUntil, a Unix millisecond that the holder promises none of its names exceeds. The holder
// raises it on every renewal to at least now + leaseDuration, and admits a batch of names (Claim.Admit)
// only while the Lease is held and the batch's latest millisecond is within the watermark written by the
// last successful renewal. The next holder starts its generator after the watermark (Claim.After), so its
// names are later than every name of the previous holder, whatever the two clocks say. Release lowers the
// watermark to the last millisecond actually admitted, so an orderly hand-over costs no clock lead.
//
// A Lease that does not exist (first use, or someone deleted it) has no watermark; its claimer starts
// leaseDuration ahead of its own clock, which covers a holder that has not yet noticed the deletion, as
// long as the clocks agree within a lease duration.
//
// # Losing
//
// The holder renews every RenewInterval. A renewal that finds the Lease deleted or held by someone else,
// or no successful renewal for RenewDeadline, ends the claim at once: Lost is closed, Context is
// cancelled and Admit refuses every later batch. Admit also checks the renew deadline itself, so a
// starved renewal goroutine cannot let a stale claim issue names.
package nodeid
