package v1alpha1

// Patterns the CRD schemas check with CEL rules. kubebuilder markers cannot name a Go constant, so
// each marker repeats the text of one of these; TestMarkersUseTheGoPatterns reads the generated CRDs
// and fails when a marker and its constant drift apart, and code (protocol's key tests, the packer)
// checks its output against the constants. They are RE2 expressions, as CEL's matches() takes them,
// and use [.] rather than \. so the text is the same in Go, in a marker and in a CEL string.
const (
	// prefixSegment is one segment of an archive prefix: letters, digits, '.', '_' and '-', with at
	// least one character that is not a dot. "." and ".." would be resolved by path.Join when keys
	// are built (so "a/../b" writes under "b", outside the prefix the DesShard owns), and S3 consoles
	// and tools treat them differently; an empty segment ("a//b") is lost the same way.
	prefixSegment = `[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*`

	// ArchivePrefixPattern is spec.archive.prefix of a DesShard: segments separated by single '/'.
	ArchivePrefixPattern = `^` + prefixSegment + `(/` + prefixSegment + `)*$`

	// ContainerKeyPattern is the key of a container object as protocol.ContainerKey builds it,
	// <prefix>/<YYYY-MM-DD>/<4 hex digits of the shard>/c<16 hex digits>/c<16 hex digits>.des
	// (protocol.ShardHex, protocol.NewContainerID; the object inside its own folder), or as
	// protocol.LegacyContainerKey built it before: <prefix>/<YYYY-MM-DD>/<shard hex>/c<16 hex>.des.
	// Recovery deletes a container's key and its _bigFiles/, so a DesContainer may name nothing
	// else. RE2 has no back-references: that the two ids of a nested key are one is a second rule
	// (NestedContainerKeyPattern).
	ContainerKeyPattern = `^` + prefixSegment + `(/` + prefixSegment + `)*/[0-9]{4}-[0-9]{2}-[0-9]{2}/[0-9a-f]{4}/(c[0-9a-f]{16}/)?c[0-9a-f]{16}[.]des$`

	// NestedContainerKeyPattern is the end of a protocol.ContainerKey: the object c<id>.des inside
	// its folder c<id>/. A key matching it has its day and shard 18 characters further from the end
	// than a legacy key ("c<16 hex digits>/"), which the DesContainer's day and shard rules use.
	NestedContainerKeyPattern = `/c[0-9a-f]{16}/c[0-9a-f]{16}[.]des$`

	// BucketNamePattern is the shape of an S3 bucket name: 3 to 63 lower-case letters, digits, dots
	// and hyphens, beginning and ending with a letter or digit. The rules also refuse two adjacent
	// dots and names shaped like an IPv4 address (BucketNameIPPattern), as S3 does.
	BucketNamePattern = `^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`
	// BucketNameIPPattern is what S3 refuses as a bucket name although BucketNamePattern allows it.
	BucketNameIPPattern = `^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$`

	// DayPattern is a DesContainer's spec.day: a calendar date YYYY-MM-DD (UTC).
	DayPattern = `^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$`
)

// Bounds of DesShard settings, with the reasons in the markers' comments.
const (
	// MinInterval is the shortest spec.interval: each run lists Jobs, Leases and containers and asks
	// the catalog, so shorter intervals keep the controller busy in a loop.
	MinInterval = "10s"
	// MaxContainerBytes bounds spec.limits.maxBytes (1 TiB).
	MaxContainerBytes int64 = 1 << 40
	// MaxContainerFiles bounds spec.limits.maxFiles.
	MaxContainerFiles int64 = 10_000_000
	// MaxBigFileThreshold bounds spec.bigFileThreshold (5 GiB).
	MaxBigFileThreshold int64 = 5 << 30
)
