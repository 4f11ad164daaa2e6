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

// OrPending is the phase, with a container whose status has no phase yet (created, nothing recorded)
// counted as Pending, as status, metrics and messages show it.
func (p ContainerPhase) OrPending() ContainerPhase {
	if p == "" {
		return PhasePending
	}
	return p
}
