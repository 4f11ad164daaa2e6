package v1alpha1

import "github.com/datavision/des/internal/protocol"

// IsFinal reports whether nothing more will ever happen to a container's rows and object: it was
// committed, rolled back or failed. Recovery, the packer and the tools all decide on this one rule.
func (p ContainerPhase) IsFinal() bool {
	return p == PhaseCommitted || p == PhaseRolledBack || p == PhaseFailed
}

// RecoveredReason is the condition and event reason of a container that recovery brought to phase.
func RecoveredReason(phase ContainerPhase) ConditionReason {
	return ConditionReason("Recovered" + string(phase))
}

// OrPending is the phase, with a container whose status has no phase yet (created, nothing recorded)
// counted as Pending, as status, metrics and messages show it.
func (p ContainerPhase) OrPending() ContainerPhase {
	if p == "" {
		return PhasePending
	}
	return p
}

// CheckLocation is nil when the container's bucket is its DesShard's archive bucket and its key is
// one the protocol gives its name, day and shard under the archive prefix; otherwise an error
// matching protocol.ErrKeyNotOwned says what differs. Recovery checks it before it deletes anything a
// container names, and kubectl des verify before it trusts what is stored there.
func (c *DesContainer) CheckLocation(archiveBucket, archivePrefix string) error {
	if err := protocol.CheckContainerBucket(archiveBucket, c.Spec.Bucket); err != nil {
		return err
	}
	return protocol.CheckContainerKey(archivePrefix, c.Spec.ShardRef, c.Spec.Day, c.Spec.Shard, c.Name, c.Spec.Key)
}
