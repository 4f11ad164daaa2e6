package controllers

import (
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/internal/protocol"
)

// CacheByObject restricts what the manager's informers hold to the objects DES made, so the
// controller's memory and its watch traffic follow DES's own work, not the cluster's: every
// component of a cluster renews Leases (kubelets, leader elections) and many teams run Jobs.
// The controllers only ever read Leases, Jobs and CronJobs carrying DES's managed-by label
// (shard Leases, naming node Leases, packer Jobs, marker CronJobs), so an object without it is
// invisible to them either way.
func CacheByObject() map[client.Object]cache.ByObject {
	ours := labels.SelectorFromSet(labels.Set{protocol.LabelManagedBy: protocol.ManagedByDES})
	return map[client.Object]cache.ByObject{
		&coordinationv1.Lease{}: {Label: ours},
		&batchv1.Job{}:          {Label: ours},
		&batchv1.CronJob{}:      {Label: ours},
	}
}

// ClientCacheOptions makes the manager's client read the packer ServiceAccount and RoleBinding
// straight from the API server: they are read twice per reconcile, by name, and caching them would
// watch and hold every one in the cluster.
func ClientCacheOptions() *client.CacheOptions {
	return &client.CacheOptions{DisableFor: []client.Object{&corev1.ServiceAccount{}, &rbacv1.RoleBinding{}}}
}
