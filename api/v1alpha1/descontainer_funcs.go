package v1alpha1

// IsFinal reports whether nothing more will ever happen to a container's rows and object: it was
// committed, rolled back or failed. Recovery, the packer and the tools all decide on this one rule.
func (p ContainerPhase) IsFinal() bool {
	return p == PhaseCommitted || p == PhaseRolledBack || p == PhaseFailed
}

// RecoveredReason is the condition and event reason of a container that recovery brought to phase.
func RecoveredReason(phase ContainerPhase) ConditionReason {
	return ConditionReason("Recovered" + string(phase))
}
