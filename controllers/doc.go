// Package controllers holds one reconciler per DES kind, each split by concern into files:
//
//   - DesSource (dessource_*.go): checks the catalog and the source bucket, keeps the marker CronJob,
//     returns stray claims (dessource_claims.go) and waits for its containers when deleted;
//   - DesShard (desshard_*.go): schedules packer Jobs, one per group of due shards, never two for a
//     shard (shard Leases, shard_lease.go), refuses a DesShard that overlaps another's archive shards
//     (desshard_overlap.go), records per-shard status, sweeps archive debris and, when deleted, stops
//     its Jobs and waits for its containers;
//   - DesContainer (descontainer_*.go): leaves a live writer alone (its Lease judged by what this
//     controller saw change, lease.Observer), recovers a dead one's container (roll forward or back,
//     the catalog decides; only the location it owns is touched) and ends its life after retention.
//
// deletion.go is what a DesShard's and a DesSource's deletion share. Decisions are pure functions
// (runDue, planRun, busyShards, judgeWriter, findOverlap, accountedPrefixes, strayClaim, deletionWait,
// lastOutcomes, ...) tested without servers; status is patched in a deferred call; every failure a
// person must act on is a condition reason (api/v1alpha1) and a Warning event. Connections come from
// internal/connect.
package controllers
