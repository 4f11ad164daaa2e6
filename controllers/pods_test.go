package controllers

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

// desPods renders every kind of pod DES creates, from the same DesShard and DesSource.
func desPods(d JobDefaults) map[string]corev1.PodSpec {
	src := sampleSource("src")
	src.Spec.Store.CABundleSecretRef = &desv1.SecretKeyRef{Name: "source-ca", Key: "ca.crt"}
	src.Spec.Marker = &desv1.Marker{Schedule: "*/5 * * * *"}
	ds := sampleShard("daily", "src", 0, 1)
	ds.Spec.Archive.CABundleSecretRef = &desv1.SecretKeyRef{Name: "archive-ca", Key: "ca.crt"}
	job := buildJob(ds, src, jobPlan{Name: "daily-r1-g0", Shards: []int32{0, 1}}, 1, d)
	marker := markerCronJobSpec(src, d)
	return map[string]corev1.PodSpec{"packer": job.Spec.Template.Spec, "marker": marker.JobTemplate.Spec.Template.Spec}
}

// securityChecks lists what Pod Security "restricted" and reading Secret files as a non-root user
// need of a pod spec, each with whether spec has it.
func securityChecks(spec corev1.PodSpec) []struct {
	what string
	ok   bool
} {
	type check = struct {
		what string
		ok   bool
	}
	id := protocol.NonRootID
	sc := spec.SecurityContext
	if sc == nil {
		return []check{{"pod securityContext", false}}
	}
	checks := []check{
		{"pod runAsNonRoot", ptr.Deref(sc.RunAsNonRoot, false)},
		{"pod runAsUser 65532", ptr.Deref(sc.RunAsUser, 0) == id},
		{"pod runAsGroup 65532", ptr.Deref(sc.RunAsGroup, 0) == id},
		{"pod fsGroup 65532", ptr.Deref(sc.FSGroup, 0) == id},
		{"seccomp RuntimeDefault", sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
	}
	for _, c := range spec.Containers {
		csc := c.SecurityContext
		if csc == nil {
			checks = append(checks, check{c.Name + " securityContext", false})
			continue
		}
		checks = append(checks,
			check{c.Name + " no privilege escalation", csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation},
			check{c.Name + " read-only root", ptr.Deref(csc.ReadOnlyRootFilesystem, false)},
			check{c.Name + " runAsNonRoot", ptr.Deref(csc.RunAsNonRoot, false)},
			check{c.Name + " drops ALL", csc.Capabilities != nil && len(csc.Capabilities.Drop) == 1 && csc.Capabilities.Drop[0] == "ALL"},
		)
	}
	for _, v := range spec.Volumes {
		if v.EmptyDir != nil {
			// Scratch space (the packer's temporary files): bounded, so it cannot fill the node.
			checks = append(checks, check{"volume " + v.Name + " is an emptyDir with a sizeLimit", v.EmptyDir.SizeLimit != nil && !v.EmptyDir.SizeLimit.IsZero()})
			continue
		}
		checks = append(checks, check{"volume " + v.Name + " is a Secret of mode 0440", v.Secret != nil && ptr.Deref(v.Secret.DefaultMode, 0) == 0o440})
	}
	return checks
}

func TestPodsRunAsTheImageUserAndCanReadTheirSecrets(t *testing.T) {
	for kind, spec := range desPods(JobDefaults{Image: "des:test", ServiceAccountName: "des-packer"}) {
		t.Run(kind, func(t *testing.T) {
			if len(spec.Volumes) == 0 {
				t.Fatal("no Secret volumes")
			}
			for _, c := range securityChecks(spec) {
				if !c.ok {
					t.Errorf("%s: no", c.what)
				}
			}
		})
	}
}

// TestPackerTempVolume: the packer's root filesystem is read-only, so $TMPDIR, where it keeps the open
// container's index, meta and placements, is an emptyDir big enough for maxFiles of them.
func TestPackerTempVolume(t *testing.T) {
	for _, maxFiles := range []int64{0, 1000, 10_000_000} {
		t.Run(fmt.Sprint(maxFiles), func(t *testing.T) {
			src := sampleSource("src")
			ds := sampleShard("daily", "src", 0, 1)
			ds.Spec.Limits.MaxFiles = maxFiles
			spec := buildJob(ds, src, jobPlan{Name: "daily-r1-g0", Shards: []int32{0}}, 1, JobDefaults{Image: "des:test"}).Spec.Template.Spec
			c := spec.Containers[0]
			var tmpdir string
			for _, e := range c.Env {
				if e.Name == "TMPDIR" {
					tmpdir = e.Value
				}
			}
			var volume string
			for _, m := range c.VolumeMounts {
				if m.MountPath == tmpdir && !m.ReadOnly {
					volume = m.Name
				}
			}
			if tmpdir == "" || volume == "" {
				t.Fatalf("TMPDIR %q is not a writable mount: %+v", tmpdir, c.VolumeMounts)
			}
			files := maxFiles
			if files == 0 {
				files = desv1.DefaultMaxFiles
			}
			for _, v := range spec.Volumes {
				if v.Name != volume {
					continue
				}
				if v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.Value() < files*300 {
					t.Fatalf("volume %s is not an emptyDir of at least 300 bytes per file: %+v", volume, v.VolumeSource)
				}
				return
			}
			t.Fatalf("no volume %s", volume)
		})
	}
}

func TestPackerGracePeriodOutlastsItsCleanup(t *testing.T) {
	pods := desPods(JobDefaults{Image: "des:test"})
	// internal/packer's cleanupTimeout is 20 s: SIGTERM must not turn into SIGKILL before it is over.
	if got := ptr.Deref(pods["packer"].TerminationGracePeriodSeconds, 0); got <= 20 {
		t.Fatalf("packer terminationGracePeriodSeconds = %d, want more than the packer's 20 s cleanup", got)
	}
}

func TestPodHostNetwork(t *testing.T) {
	cases := []struct {
		hostNetwork bool
		wantDNS     corev1.DNSPolicy
	}{
		{false, ""},
		{true, corev1.DNSClusterFirstWithHostNet},
	}
	for _, tc := range cases {
		for kind, spec := range desPods(JobDefaults{Image: "des:test", HostNetwork: tc.hostNetwork}) {
			if spec.HostNetwork != tc.hostNetwork || spec.DNSPolicy != tc.wantDNS {
				t.Errorf("HostNetwork %v: %s pod hostNetwork %v dnsPolicy %q, want %v %q", tc.hostNetwork, kind, spec.HostNetwork, spec.DNSPolicy, tc.hostNetwork, tc.wantDNS)
			}
		}
	}
}

func TestPackerServiceAccount(t *testing.T) {
	d := JobDefaults{ServiceAccountName: "des-packer"}
	cases := []struct {
		name, override, want string
		provided             bool
	}{
		{"default", "", "des-packer", true},
		{"the DesShard's own", "mine", "mine", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ds := sampleShard("daily", "src", 0)
			ds.Spec.Job.ServiceAccountName = tc.override
			got, provided := packerAccountFor(ds, d)
			job := buildJob(ds, sampleSource("src"), jobPlan{Name: "j", Shards: []int32{0}}, 1, d)
			if got != tc.want || provided != tc.provided || job.Spec.Template.Spec.ServiceAccountName != tc.want {
				t.Fatalf("account %q provided %v, Job runs as %q; want %q %v", got, provided, job.Spec.Template.Spec.ServiceAccountName, tc.want, tc.provided)
			}
		})
	}
}

// TestPodsPassRestrictedPodSecurity creates the pods DES renders in a namespace that enforces Pod
// Security "restricted": the API server's own admission decides, as it would on a cluster.
func TestPodsPassRestrictedPodSecurity(t *testing.T) {
	e := newTestEnv(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}
	e.get(ns)
	ns.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	ns.Labels["pod-security.kubernetes.io/enforce-version"] = "latest"
	if err := e.c.Update(e.ctx, ns); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		hostNetwork bool
		admitted    bool
	}{
		{"pod network", false, true},
		// Proves the check is live: host networking is outside even "baseline".
		{"host network", true, false},
	}
	for _, tc := range cases {
		for kind, spec := range desPods(JobDefaults{Image: "des:test", ServiceAccountName: "des-packer", HostNetwork: tc.hostNetwork}) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: kind + "-", Namespace: e.ns}, Spec: spec}
			err := e.c.Create(e.ctx, pod)
			if admitted := err == nil; admitted != tc.admitted {
				t.Errorf("%s, %s pod: admitted %v (%v), want %v", tc.name, kind, admitted, err, tc.admitted)
			}
		}
	}
}
