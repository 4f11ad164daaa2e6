package controllers

import (
	"fmt"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

// JobDefaults are the controller-wide settings for packer Jobs and marker CronJobs. A DesShard can
// choose another packer image or service account, but only one its allow-lists name (allows).
type JobDefaults struct {
	Image string
	// ServiceAccountName is the account pods run as; the controller creates it and its RoleBinding.
	ServiceAccountName      string
	TTLSecondsAfterFinished int32
	// HostNetwork runs pods on their node's network (--pod-host-network).
	HostNetwork bool
	// AllowedImages and AllowedServiceAccounts are what a DesShard's spec.job.image and
	// spec.job.serviceAccountName may name besides Image and ServiceAccountName.
	AllowedImages          []string
	AllowedServiceAccounts []string
}

// jobPlan is one Job to create in a run.
type jobPlan struct {
	Name   string
	Group  int
	Shards []int32
}

// runDue says whether a new run should start now, and when the next one is due otherwise.
func runDue(last *metav1.Time, interval time.Duration, now time.Time) (bool, time.Time) {
	if last == nil {
		return true, now
	}
	next := last.Add(interval)
	return !now.Before(next), next
}

// planRun picks, for each group, the shards that are not busy (in an active Job or under a fresh
// Lease) and names one Job per non-empty group. Names depend only on the DesShard, run and group, so
// a retried reconcile creates the same Jobs rather than duplicates.
func planRun(desShard string, run int64, groups [][]int32, busy map[int32]string) []jobPlan {
	var plans []jobPlan
	for i, g := range groups {
		var free []int32
		for _, s := range g {
			if _, ok := busy[s]; !ok {
				free = append(free, s)
			}
		}
		if len(free) == 0 {
			continue
		}
		plans = append(plans, jobPlan{Name: jobName(desShard, run, i), Group: i, Shards: free})
	}
	return plans
}

func jobName(desShard string, run int64, group int) string {
	return fmt.Sprintf("%s-r%d-g%d", desShard, run, group)
}

// jobFinished reports whether a Job has completed or failed for good.
func jobFinished(j *batchv1.Job) (finished bool, failed bool) {
	if j == nil {
		return false, false
	}
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			return true, false
		case batchv1.JobFailed, batchv1.JobFailureTarget:
			return true, true
		}
	}
	return false, false
}

// busyShards maps each shard in an active Job or under a fresh Lease to the reason it is busy.
func busyShards(jobs []batchv1.Job, leases map[int32]leaseState, holders map[int32]string) map[int32]string {
	busy := map[int32]string{}
	for i := range jobs {
		if finished, _ := jobFinished(&jobs[i]); finished {
			continue
		}
		shards, err := protocol.ParseShardList(jobs[i].Annotations[protocol.AnnotationShards])
		if err != nil {
			continue
		}
		for _, s := range shards {
			busy[s] = "job " + jobs[i].Name
		}
	}
	for s, state := range leases {
		if state == leaseHeld {
			if _, ok := busy[s]; !ok {
				busy[s] = "lease held by " + holders[s]
			}
		}
	}
	return busy
}

// buildJob renders the packer Job for one plan. The pod gets its Secrets as read-only files, never as
// environment variables, so they do not show up in `kubectl describe`.
func buildJob(ds *desv1.DesShard, src *desv1.DesSource, plan jobPlan, run int64, d JobDefaults) *batchv1.Job {
	tmpl := ds.Spec.Job
	image := d.Image
	if tmpl.Image != "" {
		image = tmpl.Image
	}
	sa, _ := packerAccountFor(ds, d)
	labels := map[string]string{
		protocol.LabelManagedBy: protocol.ManagedByDES,
		protocol.LabelComponent: "packer",
		protocol.LabelDesShard:  ds.Name,
		protocol.LabelSource:    src.Name,
		protocol.LabelRun:       strconv.FormatInt(run, 10),
		protocol.LabelGroup:     strconv.Itoa(plan.Group),
	}
	volumes, mounts := packerVolumes(ds, src)
	container := corev1.Container{
		Name:    "packer",
		Image:   image,
		Command: []string{"/manager"},
		Args: []string{"pack",
			"--desshard=" + ds.Name,
			"--shards=" + protocol.FormatShardList(plan.Shards),
		},
		Env: []corev1.EnvVar{
			fieldEnv("POD_NAME", "metadata.name"),
			fieldEnv("POD_NAMESPACE", "metadata.namespace"),
			{Name: "DES_JOB_NAME", Value: plan.Name},
			// The open container's index, meta and placements go to temporary files (see tempVolume).
			{Name: "TMPDIR", Value: packerTempDir},
		},
		VolumeMounts:    mounts,
		SecurityContext: containerSecurityContext(),
	}
	if tmpl.Resources != nil {
		container.Resources = *tmpl.Resources
	}
	pod := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		ServiceAccountName:            sa,
		NodeSelector:                  tmpl.NodeSelector,
		Tolerations:                   tmpl.Tolerations,
		Containers:                    []corev1.Container{container},
		Volumes:                       volumes,
		SecurityContext:               podSecurityContext(),
		TerminationGracePeriodSeconds: ptr.To(packerTerminationGraceSeconds),
	}
	setPodNetwork(&pod, d)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        plan.Name,
			Namespace:   ds.Namespace,
			Labels:      labels,
			Annotations: map[string]string{protocol.AnnotationShards: protocol.FormatShardList(plan.Shards)},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To(tmpl.BackoffLimit),
			ActiveDeadlineSeconds:   ptr.To(tmpl.ActiveDeadlineSeconds),
			TTLSecondsAfterFinished: ptr.To(d.TTLSecondsAfterFinished),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       pod,
			},
		},
	}
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
}

// packerTempDir is where the packer's temporary files go: the root filesystem is read-only.
const packerTempDir = "/tmp"

// packerTempBytesPerFile is the disk the packer needs per file of the open container, with room to
// spare: its index entry (38 bytes and the name), its meta (about 50 bytes) and its placement
// (about 60 bytes, the name and the source ETag), for DES names of some 40 bytes.
const packerTempBytesPerFile = 512

// packerTempSize is the sizeLimit of the packer's temporary volume: one container is open at a
// time, so its maxFiles bound the need; 64 MiB more for anything else that writes to $TMPDIR.
func packerTempSize(ds *desv1.DesShard) *resource.Quantity {
	files := ds.Spec.Limits.MaxFiles
	if files <= 0 {
		files = desv1.DefaultMaxFiles
	}
	return resource.NewQuantity(files*packerTempBytesPerFile+64<<20, resource.BinarySI)
}

func packerVolumes(ds *desv1.DesShard, src *desv1.DesSource) ([]corev1.Volume, []corev1.VolumeMount) {
	volumes := []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: packerTempSize(ds)}}}}
	mounts := []corev1.VolumeMount{{Name: "tmp", MountPath: packerTempDir}}
	add := func(name, dir, secret string, items []corev1.KeyToPath) {
		volumes = append(volumes, secretVolume(name, secret, items))
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: dir, ReadOnly: true})
	}
	dsn := src.Spec.Catalog.DSNSecretRef
	add("catalog", protocol.CatalogSecretDir, dsn.Name, []corev1.KeyToPath{{Key: dsn.Key, Path: protocol.CatalogDSNFile}})
	add("source-credentials", protocol.SourceSecretDir, src.Spec.Store.CredentialsSecretRef.Name, nil)
	add("archive-credentials", protocol.ArchiveSecretDir, ds.Spec.Archive.CredentialsSecretRef.Name, nil)
	if ca := src.Spec.Store.CABundleSecretRef; ca != nil {
		add("source-ca", protocol.SourceCADir, ca.Name, []corev1.KeyToPath{{Key: ca.Key, Path: protocol.CABundleFile}})
	}
	if ca := ds.Spec.Archive.CABundleSecretRef; ca != nil {
		add("archive-ca", protocol.ArchiveCADir, ca.Name, []corev1.KeyToPath{{Key: ca.Key, Path: protocol.CABundleFile}})
	}
	return volumes, mounts
}
