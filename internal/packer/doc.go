// Package packer is the packer of docs/protocol.md ("What the packer does, step by step"): for each
// shard it was given it takes the shard's Lease, then writes containers until no ready rows remain or
// its time budget is spent. One container is:
//
//  1. Lock: the shard Lease (package lease), held for all containers of the shard.
//  2. Create the DesContainer C (finalizer, owner, labels), status Writing with job, pod, startedAt.
//  3. Claim ready rows for C in batches within the DesShard's limits; no rows at all: delete C.
//  4. Stream: a multipart upload created with If-None-Match: * whose id is recorded in C's status
//     before the first part; source objects fetched ahead in a bounded window and written in claim
//     order through the format writer; big payloads streamed to the container's own _bigFiles/; a
//     missing or unreadable source marks only its row failed.
//  5. Upload complete: status Uploaded with counts and checksums (zero files: abort, RolledBack).
//  6. Commit: catalog.Commit, status Committed; ErrRolledBack: delete the object and big payloads,
//     RolledBack.
//  7. Next container while rows remain and the budget allows; release the Lease.
//
// Whatever goes wrong while C is being written (a claim or upload error, SIGTERM) abandons C: the
// upload is aborted, the big payloads deleted, the rows rolled back and C marked RolledBack. A lost
// Lease is different: the packer stops at once and leaves C to the controller's recovery. Once the
// upload is complete, SIGTERM no longer interrupts: the packer finishes the commit.
//
// Memory is bounded by the fetch window (Tuning.PrefetchBytes), the upload parts in flight
// (Tuning.PartSize × (Tuning.UploadConcurrency+1)) and one big payload's parts, plus the format
// writer's index and meta (a few hundred bytes per file of the open container), never by the bytes of
// a container.
package packer
