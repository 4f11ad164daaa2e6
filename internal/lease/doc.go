// Package lease is the one place DES holds coordination.k8s.io/v1 Leases as locks: shard locks
// (packer, judged by the controller) and naming node ids (internal/nodeid, for the name service and
// the marker). Both used to carry their own copy of the rules below and disagreed on when a Lease
// counts as lost; keeping one copy keeps docs/protocol.md ("Shard locks", "Naming node ids") true for
// both.
//
// # Judging a Lease
//
// Classify is the pure judgement every reader uses: a Lease without a holder is Free (released), a
// holder's Lease is Held until renewTime + leaseDurationSeconds and Expired from that instant on. A
// held Lease without renewTime or duration cannot be judged fresh and counts as Expired. A renewTime
// in the future (a holder with a fast clock) is Held.
//
// Classify compares the holder's clock (renewTime) with the reader's. A reader that decides another
// process is gone and acts on it (the controller recovering a writer's container) uses an Observer
// instead: it judges a Lease Expired only once it has itself seen the Lease unchanged for its
// duration, on its own monotonic clock, and after a restart waits one full duration.
//
// # Claiming
//
// Acquire (or Claim, for a Lease the caller has already read) creates a missing Lease, or takes over a
// Free or Expired one with an Update carrying the resourceVersion that was read. The API server
// accepts exactly one Create or one Update of a given version, so two claimers never both win; the
// loser gets an error matching ErrHeld. A claim that hits a conflict is not retried on a re-read: the
// conflicting writer may be a new holder, and a Lease this package did not list (another owner's
// object of the same name) must never be overwritten. A Held Lease is never taken, whoever holds it,
// even the same identity: a previous incarnation might still run.
//
// # Holding and losing
//
// The holder renews every RenewInterval. A renewal that meets a conflict re-reads the Lease and
// renews that version if it is still ours. The hold is lost, once and for good, at the first of:
//
//   - a renewal or its re-read finds the Lease deleted;
//   - the Lease names another holder, or the same holder with another acquireTime (it was taken over,
//     perhaps by a later incarnation of the same pod);
//   - no renewal has succeeded for RenewDeadline, measured on the monotonic clock from the start of
//     the last successful write (the server may have stored it any time after).
//
// RenewDeadline is shorter than the Lease duration, so a holder stops before anyone may judge its
// Lease Expired. A watchdog timer ends the hold at the deadline even when a renewal call hangs, and
// Err checks the deadline itself, so a starved goroutine cannot make a stale hold look valid. Once
// lost, Context is cancelled with a cause wrapping ErrLost.
//
// # Releasing
//
// Release ends the hold at once (Err returns ErrReleased from the moment it is called), then clears
// the holder if the Lease is still ours, so the lock is Free now rather than after expiry. Releasing a
// lost hold writes nothing: the Lease is no longer ours to clear.
//
// # Hooks
//
// A Decorate hook sees every Lease the package is about to write (claim, renew, release, including
// the retry after a re-read) and may add labels and annotations to it. Node ids keep their watermark
// annotation this way instead of running a second renew loop.
package lease
