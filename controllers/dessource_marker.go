package controllers

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

// +kubebuilder:rbac:groups=batch,resources=cronjobs,verbs=get;list;watch;create;update;patch;delete

// markerCronJobName is the CronJob that runs `manager mark` for a DesSource.
func markerCronJobName(src *desv1.DesSource) string { return src.Name + "-marker" }

// reconcileMarker makes the marker CronJob match spec.marker: present with its schedule when set,
// absent when not.
func reconcileMarker(ctx context.Context, c client.Client, scheme *runtime.Scheme, src *desv1.DesSource, d JobDefaults) error {
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: markerCronJobName(src), Namespace: src.Namespace}}
	if src.Spec.Marker == nil {
		if err := client.IgnoreNotFound(c.Delete(ctx, cj)); err != nil {
			return fmt.Errorf("delete marker CronJob: %w", err)
		}
		return nil
	}
	_, err := controllerutil.CreateOrUpdate(ctx, c, cj, func() error {
		cj.Labels = map[string]string{protocol.LabelManagedBy: protocol.ManagedByDES, protocol.LabelComponent: "marker", protocol.LabelSource: src.Name}
		cj.Spec = markerCronJobSpec(src, d)
		return controllerutil.SetControllerReference(src, cj, scheme)
	})
	if err != nil {
		return fmt.Errorf("create or update marker CronJob: %w", err)
	}
	return nil
}

// markerCronJobSpec renders the marker's schedule and pod. Overlapping runs would be safe (rows are
// claimed with SKIP LOCKED) but wasteful, so they are forbidden.
func markerCronJobSpec(src *desv1.DesSource, d JobDefaults) batchv1.CronJobSpec {
	dsn := src.Spec.Catalog.DSNSecretRef
	labels := map[string]string{protocol.LabelManagedBy: protocol.ManagedByDES, protocol.LabelComponent: "marker", protocol.LabelSource: src.Name}
	container := corev1.Container{
		Name:            "marker",
		Image:           d.Image,
		Command:         []string{"/manager"},
		Args:            []string{"mark", "--dessource=" + src.Name},
		Env:             []corev1.EnvVar{fieldEnv("POD_NAME", "metadata.name"), fieldEnv("POD_NAMESPACE", "metadata.namespace")},
		VolumeMounts:    []corev1.VolumeMount{{Name: "catalog", MountPath: protocol.CatalogSecretDir, ReadOnly: true}},
		SecurityContext: containerSecurityContext(),
	}
	pod := corev1.PodSpec{
		RestartPolicy:      corev1.RestartPolicyNever,
		ServiceAccountName: d.ServiceAccountName,
		Containers:         []corev1.Container{container},
		Volumes:            []corev1.Volume{secretVolume("catalog", dsn.Name, []corev1.KeyToPath{{Key: dsn.Key, Path: protocol.CatalogDSNFile}})},
		SecurityContext:    podSecurityContext(),
	}
	setPodNetwork(&pod, d)
	return batchv1.CronJobSpec{
		Schedule:                   src.Spec.Marker.Schedule,
		ConcurrencyPolicy:          batchv1.ForbidConcurrent,
		SuccessfulJobsHistoryLimit: ptr.To(int32(1)),
		FailedJobsHistoryLimit:     ptr.To(int32(3)),
		JobTemplate: batchv1.JobTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: batchv1.JobSpec{
				BackoffLimit:            ptr.To(int32(1)),
				TTLSecondsAfterFinished: ptr.To(d.TTLSecondsAfterFinished),
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       pod,
				},
			},
		},
	}
}
