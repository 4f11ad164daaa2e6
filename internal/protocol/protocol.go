// Package protocol holds the names the controller and the packer must agree on (docs/protocol.md):
// shard Lease names and labels, where a packer pod finds its Secrets, and container object keys.
package protocol

import (
	"crypto/rand"
	"fmt"
	"path"
	"time"
)

// Labels and annotations DES puts on the objects it creates.
const (
	LabelManagedBy   = "app.kubernetes.io/managed-by"
	ManagedByDES     = "des-operator"
	LabelComponent   = "app.kubernetes.io/component"
	LabelDesShard    = "des.datavision.io/desshard"
	LabelSource      = "des.datavision.io/source"
	LabelRun         = "des.datavision.io/run"
	LabelGroup       = "des.datavision.io/group"
	LabelShard       = "des.datavision.io/shard"
	AnnotationShards = "des.datavision.io/shards"
	// AnnotationPackNow on a DesShard asks for one run now, whatever the schedule and the fill
	// policy say: "" or "all" for every shard of the DesShard, or a shard list (FormatShardList) for
	// some. The controller removes it once honoured (kubectl des pack-now sets it).
	AnnotationPackNow = "des.datavision.io/pack-now"
)

// Shard Lease timing: a packer renews every LeaseRenewInterval; a Lease not renewed for
// LeaseDuration is expired and its shard's open containers are recovered by the controller.
const (
	LeaseDuration      = 30 * time.Second
	LeaseRenewInterval = 10 * time.Second
)

// NonRootID is the uid and gid every DES process runs as: the distroless image's "nonroot" user
// (Dockerfile `USER 65532:65532`). Pods DES creates also get it as fsGroup, so that the kubelet makes
// mounted Secret files group-owned by it and the process can read them without being root.
const NonRootID int64 = 65532

// Where a packer pod finds its Secrets, mounted read-only by the Job the controller renders.
const (
	CatalogSecretDir = "/var/run/des/catalog"
	CatalogDSNFile   = "dsn"
	SourceSecretDir  = "/var/run/des/source"
	ArchiveSecretDir = "/var/run/des/archive"
	SourceCADir      = "/var/run/des/source-ca"
	ArchiveCADir     = "/var/run/des/archive-ca"
	CABundleFile     = "ca.crt"
)

// LeaseName is the name of the Lease that locks one shard of a DesShard.
func LeaseName(desShard string, shard int32) string {
	const maxPrefix = 253 - len("des--0000")
	if len(desShard) > maxPrefix {
		desShard = desShard[:maxPrefix]
	}
	return fmt.Sprintf("des-%s-%04x", desShard, shard)
}

// ShardHex is a shard id as it appears in object keys and Lease names.
func ShardHex(shard int32) string { return fmt.Sprintf("%04x", shard) }

// ShardPrefix is the key prefix of one shard's containers for one day: <prefix>/<YYYY-MM-DD>/<shard-hex>.
// Each container has its own folder under it (ContainerPrefix).
func ShardPrefix(prefix string, day time.Time, shard int32) string {
	return path.Join(prefix, day.UTC().Format(time.DateOnly), ShardHex(shard))
}

// ContainerKey is the object key of a container, inside its own prefix:
// <prefix>/<YYYY-MM-DD>/<shard-hex>/<container-id>/<container-id>.des. The object sits next to its
// _bigFiles/ folder because the v1 reader looks for big payloads at <folder of the key>/_bigFiles/,
// and a folder per container keeps roll-back safe: deleting one container's prefix never touches
// another's payloads. Containers written before this layout keep LegacyContainerKey.
func ContainerKey(prefix string, day time.Time, shard int32, containerID string) string {
	return ContainerPrefix(prefix, day, shard, containerID) + "/" + containerID + ContainerSuffix
}

// LegacyContainerKey is the key containers had before ContainerKey put them inside their prefix:
// <prefix>/<YYYY-MM-DD>/<shard-hex>/<container-id>.des, next to (not inside) the container's prefix.
// Nothing writes it any more; it is here so recovery, the sweep and the reader still know such
// containers as DES's.
func LegacyContainerKey(prefix string, day time.Time, shard int32, containerID string) string {
	return ShardPrefix(prefix, day, shard) + "/" + containerID + ContainerSuffix
}

// FinalizerRecovery is set by the packer on every DesContainer it creates and removed by the controller
// once the container's phase is final, so deleting an unfinished container first rolls it back.
const FinalizerRecovery = "des.datavision.io/recovery"

// FinalizerContainers is set by the controller on every DesShard and DesSource, and removed once none
// of their containers is unfinished and no packer holds one of their shard Leases: deleting either
// first rolls back (or forward) what its packers left, while the catalog and archive settings that
// recovery needs still exist.
const FinalizerContainers = "des.datavision.io/containers"

// ContainerPrefix is the per-container key prefix: <prefix>/<YYYY-MM-DD>/<shard-hex>/<container-id>.
// The container's object (ContainerKey) and its big payloads (ContainerPrefix/_bigFiles/<name>) are
// under it; so are the big payloads of a container with a LegacyContainerKey.
func ContainerPrefix(prefix string, day time.Time, shard int32, containerID string) string {
	return ShardPrefix(prefix, day, shard) + "/" + containerID
}

// NewContainerID returns a unique, time-ordered container id: "c" and 16 lower-case hex digits of
// Unix milliseconds << 16 | 16 random bits. It is valid in object keys and Kubernetes names.
func NewContainerID(now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	return fmt.Sprintf("c%016x", uint64(now.UnixMilli())<<16|uint64(b[0])<<8|uint64(b[1]))
}

// ContainerName is the DesContainer name of a container of a DesShard.
func ContainerName(desShard, containerID string) string { return desShard + "-" + containerID }

// DayPrefix is the key prefix of all containers of one day: <prefix>/<YYYY-MM-DD>/.
func DayPrefix(prefix string, day time.Time) string {
	return path.Join(prefix, day.UTC().Format(time.DateOnly)) + "/"
}
