// Package reader is the DES reader sidecar (`manager reader`): an HTTP server, meant to listen on the
// pod's loopback interface, that serves files out of DES containers in an S3-compatible store so that
// applications never talk to S3 or parse the format themselves.
//
// # Cost model
//
// Opening a container costs one suffix-range GET when its index (and meta) fit the tail read, two
// otherwise; the parsed index is kept in a byte-bounded LRU ([indexCache]) so later reads of the same
// container cost nothing but the payload itself. Concurrent opens of one container collapse into one.
// With Config.IndexTier ([RedisIndexTier]) the bytes an open fetched are shared through Redis, so other
// replicas open the container with no request to S3; entries are checked and ignored when anything is
// off (indextier.go).
// A single small file is then one ranged GET; a batch is planned with desformat.PlanBatch, whose
// coalesced ranges are fetched with objstore.FetchRanges (bounded concurrency) and streamed part by part.
//
// # Integrity
//
// Payloads up to Config.VerifyBuffer bytes are fetched whole and checked against their CRC-32C before
// any header is written, so a damaged payload gives a 502 instead of wrong bytes. Larger payloads and
// batches are verified while streaming; a mismatch found after the headers went out aborts the
// response (the connection is cut), which every HTTP client reports as an error.
//
// # Finding a container by name
//
// GET /v1/files/{name} parses the name's day, computes its shard, and looks in the containers of that
// shard written on that day (and Config.LookAheadDays later days, since a container's key carries the
// day it was written, which can follow the day in the name). Candidates come from DesContainer
// resources (phase Committed) when a Kubernetes client is configured, then from listing the archive
// prefix; both are cached for Config.ListTTL and refreshed early, at most every Config.MissRefresh,
// when a name is not found. A listed object whose DesContainer exists but is not Committed (rolled
// back, or not committed yet) is never served: no committed container accounts for it.
//
// See docs/reader.md for the HTTP API.
package reader
