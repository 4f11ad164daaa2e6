// Package controllers holds one reconciler per DES kind, each split by concern into files:
//
//   - DesSource (dessource_*.go): checks the catalog and the source bucket, keeps the marker CronJob;
//   - DesShard (desshard_*.go): schedules packer Jobs, one per group of due shards, never two for a
//     shard (shard Leases, shard_lease.go), records per-shard status and sweeps archive debris;
//   - DesContainer (descontainer_*.go): leaves a live writer alone, recovers a dead one's container
//     (roll forward or back, the catalog decides) and ends its life after retention.
//
// Decisions are pure functions (runDue, planRun, busyShards, judgeWriter, lastOutcomes, ...) tested
// without servers; status is patched in a deferred call; every failure a person must act on is a
// condition reason (api/v1alpha1) and a Warning event. Connections come from internal/connect.
package controllers
