package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/datavision/des/internal/protocol"
)

// What every pod DES creates (packer Jobs, marker CronJobs) has in common. They must pass Pod
// Security "restricted", so that namespaces enforcing it can hold DES resources.

// secretFileMode is the mode of mounted Secret files. On a real kubelet they are owned by root and,
// with the pod's fsGroup, by group protocol.NonRootID: 0440 lets the DES process read them and no
// one else; 0400 would leave them readable by root only.
const secretFileMode int32 = 0o440

// packerTerminationGraceSeconds is the packer pod's grace period after SIGTERM. The packer then
// finishes the commit it is in or abandons the container it writes, within cleanupTimeout (20 s,
// internal/packer/container.go), and releases its Lease; 30 s leaves room for that and the exit.
// Stated explicitly because it must stay above cleanupTimeout, whatever the cluster's default.
const packerTerminationGraceSeconds int64 = 30

// podSecurityContext runs the pod as the image's non-root user, with group protocol.NonRootID on
// mounted volumes, under the runtime's default seccomp profile.
func podSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To(protocol.NonRootID),
		RunAsGroup:     ptr.To(protocol.NonRootID),
		FSGroup:        ptr.To(protocol.NonRootID),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// containerSecurityContext takes away every privilege a DES process does not need: it only reads
// its mounted Secrets and talks to the network.
func containerSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

// secretVolume mounts a Secret (only items, when given) as files of mode secretFileMode.
func secretVolume(name, secret string, items []corev1.KeyToPath) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
		Secret: &corev1.SecretVolumeSource{SecretName: secret, Items: items, DefaultMode: ptr.To(secretFileMode)},
	}}
}

// setPodNetwork puts the pod on its node's network when the controller runs with
// --pod-host-network. ClusterFirstWithHostNet keeps cluster DNS names (a catalog Service, say)
// resolvable, which the default policy would lose on the host network. Host networking is outside
// Pod Security "baseline", so such pods need a namespace that does not enforce it.
func setPodNetwork(spec *corev1.PodSpec, d JobDefaults) {
	if !d.HostNetwork {
		return
	}
	spec.HostNetwork = true
	spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet
}
