// Package naming generates, parses and shards DES names exactly as DES v1 did.
//
// A name is
//
//	PREFIX_YYYYMMDD_(FFFFFFFFFFFF_CC)[.ext]
//
// where F is 48 bits written as 12 upper-case hex digits,
//
//	[low 32 bits of Unix milliseconds][node id, 8 bits][sequence, 8 bits]
//
// and CC is the sum of F's six big-endian bytes mod 256, as 2 upper-case hex digits. The day is the UTC
// calendar day of the generation time unless the caller supplies one (the assignment service may name files
// for another day). The layout and the shard rule are pinned by ../shared/testdata/des-v1 (README.md and
// naming.json); every vector there is checked by this package's tests.
//
// # Uniqueness
//
// One Generator never issues the same name twice: each name takes a distinct (millisecond, sequence) pair,
// with at most 256 names per millisecond. When the 256 are used up the generator waits for the next
// millisecond. When the clock steps back, the generator keeps using the last millisecond it issued (its time
// bits never go backwards) and, once that millisecond's sequence is exhausted, sleeps for a millisecond of
// real time and moves its own millisecond forward by one. A stepped-back, frozen or coarse clock therefore
// neither blocks issuance nor lets the rate exceed 256 names per real millisecond; the time bits run ahead
// of the clock until it catches up. Names stay unique across generators only if each node id is held by one
// generator at a time (the assignment service guarantees that with a Lease) and a new holder starts after
// the last millisecond the previous one may have used (Config.After), since two hosts' clocks differ.
//
// The time bits wrap every 2^32 ms (about 49.7 days). Names whose day comes from the clock cannot collide
// across a wrap, because a day is far shorter than that. Names for an explicit day can in principle repeat if
// the same generator issues names for the same prefix and day more than 49.7 days apart and happens to hit
// the same (millisecond mod 2^32, sequence) pair; this is inherent to the v1 layout.
//
// # Shards
//
// The shard of a name is the top bits of SHA-256 of its UTF-8 bytes (extension included), see Shard.
package naming
