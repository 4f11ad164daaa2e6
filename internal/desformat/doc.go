// Package desformat reads and writes DES archives: a v1-compatible
// container of many small payloads with JSON meta, located from a
// fixed-size footer so that a remote reader needs one ranged read to open.
//
// Layout (all integers little-endian; see docs/format.md):
//
//	header  16 B   "DESHEAD1", version 1, 7 reserved bytes
//	data           payloads back to back (external payloads have none)
//	meta           one compact JSON object per entry
//	index          per entry: u16 name length, name, data_offset, data_length,
//	               meta_offset, meta_length (u64), flags (u32)
//	footer  72 B   "DESFOOT1", version 1, 7 reserved bytes, seven u64:
//	               data/meta/index start+length, file_count
//
// Beyond v1, the writer records a CRC-32C per payload (meta key "crc32c")
// and a CRC-32C of the index in the footer's reserved bytes; v1 readers
// ignore both, and this package verifies them only when present.
//
// The package imports only the standard library and never panics on
// archive input: every offset and length is validated before use and
// allocations are bounded by bytes that actually exist.
package desformat
