// Package des is the public Go API of the DES container format and of DES names.
//
// A DES container is one large object that holds many small payloads back to back, followed by a
// JSON meta object per payload, an index and a fixed-size footer. Because the footer sits at the end
// and says where everything else is, a reader needs only an io.ReaderAt (a local file, or ranged GETs
// against S3) and one read of the archive's tail to open it, and then one ranged read per file, or
// one per group of neighbouring files for a batch. The layout is v1-compatible and documented in
// docs/format.md; this package adds a CRC-32C per payload and of the index, which v1 readers ignore
// and this package verifies whenever they are present.
//
// Everything here is a type alias or a thin forwarder over the module's internal packages
// (internal/desformat and internal/naming), which the packer, the reader sidecar and the CLI use
// themselves: there is exactly one implementation of the format and of the naming rules, and a
// value of a type from this package is the very value those components produce. The internal
// packages import only the standard library, so neither does this one pull in anything else.
//
// What is here:
//
//   - Writer streams an archive to any io.Writer (Add per payload, then Close).
//   - Reader opens one over an io.ReaderAt: Stat, Meta, Open, ReadFile, Verify.
//   - Batch reads: Reader.PlanBatch coalesces many files into few byte ranges (Plan), which
//     Plan.Execute reads sequentially or a caller fetches in parallel (Range.Deliver checks each
//     file's CRC-32C); Reader.ReadBatch does both in one call.
//   - Names: NewGenerator issues unique PREFIX_YYYYMMDD_(FFFFFFFFFFFF_CC)[.ext] names for one node
//     id, ParseName decodes and checks them, and Shard gives a name's shard the way DES v1 did.
//
// All errors can be matched with errors.Is against the Err* values below, which are the sentinels
// the internal packages return. To read files back through a running reader sidecar instead of
// from the archive bytes, use package github.com/datavision/des/pkg/client.
package des
