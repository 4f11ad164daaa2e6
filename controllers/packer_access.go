package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

// The manager creates the packer ServiceAccount and RoleBinding in each namespace with DES resources.
// `bind` on the packer role is what lets it bind the role without holding the role's rights itself.
// It reads them uncached (cmd/manager: the cache would watch every one in the cluster), so it needs
// neither list nor watch.
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;create;update;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=rolebindings,verbs=get;create;update;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind,resourceNames=des-packer-role

const (
	// packerRoleBindingName is the RoleBinding of the packer ServiceAccount in each namespace.
	packerRoleBindingName = "des-packer"
	// packerClusterRoleName is what packer and marker pods may do (config/rbac/packer_role.yaml).
	packerClusterRoleName = "des-packer-role"
)

// packerAccountFor names the ServiceAccount the packer pods of ds run as, and whether DES provides
// it. An account named in spec.job.serviceAccountName is the user's, and so is binding it.
func packerAccountFor(ds *desv1.DesShard, d JobDefaults) (name string, provided bool) {
	if ds.Spec.Job.ServiceAccountName != "" {
		return ds.Spec.Job.ServiceAccountName, false
	}
	return d.ServiceAccountName, true
}

// desiredPackerAccess is the ServiceAccount named account in namespace and the RoleBinding that
// grants it the packer role, owned (not controlled) by owner. Every DesShard and DesSource whose
// pods run as the account is one of its owners, so the garbage collector deletes both objects
// when the last of them is gone.
func desiredPackerAccess(namespace, account string, owner metav1.OwnerReference) (*corev1.ServiceAccount, *rbacv1.RoleBinding) {
	objectMeta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name:            name,
			Namespace:       namespace,
			Labels:          map[string]string{protocol.LabelManagedBy: protocol.ManagedByDES},
			OwnerReferences: []metav1.OwnerReference{owner},
		}
	}
	sa := &corev1.ServiceAccount{ObjectMeta: objectMeta(account)}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: objectMeta(packerRoleBindingName),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: packerClusterRoleName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: account, Namespace: namespace}},
	}
	return sa, rb
}

// mergeShared adds desired's labels and owner references to current and reports whether current
// changed. It takes nothing away: annotations or imagePullSecrets people add to the account, and
// the other owners, stay. An owner recreated under the same name replaces its stale reference.
func mergeShared(current, desired metav1.Object) bool {
	changed := false
	labels := current.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range desired.GetLabels() {
		if labels[k] != v {
			labels[k], changed = v, true
		}
	}
	current.SetLabels(labels)
	refs := current.GetOwnerReferences()
	for _, want := range desired.GetOwnerReferences() {
		i := indexOwner(refs, want)
		switch {
		case i < 0:
			refs, changed = append(refs, want), true
		case refs[i].UID != want.UID:
			refs[i], changed = want, true
		}
	}
	current.SetOwnerReferences(refs)
	return changed
}

func indexOwner(refs []metav1.OwnerReference, want metav1.OwnerReference) int {
	for i, r := range refs {
		if r.APIVersion == want.APIVersion && r.Kind == want.Kind && r.Name == want.Name {
			return i
		}
	}
	return -1
}

// mergeRoleBinding is mergeShared plus the desired subject. The role of a binding cannot change;
// one that binds another role is reported rather than silently left useless.
func mergeRoleBinding(current, desired *rbacv1.RoleBinding) (bool, error) {
	if current.RoleRef != desired.RoleRef {
		return false, fmt.Errorf("it binds %s %s, not %s %s: delete it and DES recreates it",
			current.RoleRef.Kind, current.RoleRef.Name, desired.RoleRef.Kind, desired.RoleRef.Name)
	}
	changed := mergeShared(current, desired)
	for _, want := range desired.Subjects {
		if !hasSubject(current.Subjects, want) {
			current.Subjects, changed = append(current.Subjects, want), true
		}
	}
	return changed, nil
}

func hasSubject(subjects []rbacv1.Subject, want rbacv1.Subject) bool {
	for _, s := range subjects {
		if s.Kind == want.Kind && s.Name == want.Name && s.Namespace == want.Namespace {
			return true
		}
	}
	return false
}

// ensurePackerAccess makes sure the ServiceAccount account and the packer RoleBinding exist in
// owner's namespace with owner among their owners. Objects of those names that DES did not create
// (no managed-by label) belong to the user and are left as they are.
//
// c should read ServiceAccounts and RoleBindings from the API server, not from a cache, which would
// hold every one in the cluster for two reads per reconcile: the manager disables caching them.
func ensurePackerAccess(ctx context.Context, c client.Client, scheme *runtime.Scheme, owner client.Object, account string) error {
	if account == "" {
		return nil // pods run as the namespace's default account, which is not DES's to manage
	}
	ref, err := ownerReference(owner, scheme)
	if err != nil {
		return err
	}
	sa, rb := desiredPackerAccess(owner.GetNamespace(), account, ref)
	mergeAccount := func(current, desired *corev1.ServiceAccount) (bool, error) { return mergeShared(current, desired), nil }
	if err := ensureShared(ctx, c, "ServiceAccount", sa, func() *corev1.ServiceAccount { return &corev1.ServiceAccount{} }, mergeAccount); err != nil {
		return err
	}
	return ensureShared(ctx, c, "RoleBinding", rb, func() *rbacv1.RoleBinding { return &rbacv1.RoleBinding{} }, mergeRoleBinding)
}

// ensureShared creates desired, or merges it into the DES-made object of its name. DesShards and
// DesSources share these objects and are reconciled concurrently, so losing a race to create or
// update one is retried at once rather than reported.
func ensureShared[T client.Object](ctx context.Context, c client.Client, kind string, desired T, empty func() T, merge func(current, desired T) (bool, error)) error {
	logger := log.FromContext(ctx).WithValues("kind", kind, "name", desired.GetName())
	raced := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }
	err := retry.OnError(retry.DefaultRetry, raced, func() error {
		current := empty()
		err := c.Get(ctx, client.ObjectKeyFromObject(desired), current)
		switch {
		case apierrors.IsNotFound(err):
			if err := c.Create(ctx, desired.DeepCopyObject().(T)); err != nil {
				return fmt.Errorf("create: %w", err)
			}
			logger.Info("created for packer and marker pods")
			return nil
		case err != nil:
			return fmt.Errorf("get: %w", err)
		case current.GetLabels()[protocol.LabelManagedBy] != protocol.ManagedByDES:
			logger.V(1).Info("exists and was not created by DES: left alone")
			return nil
		}
		changed, err := merge(current, desired)
		if err != nil || !changed {
			return err
		}
		if err := c.Update(ctx, current); err != nil {
			return fmt.Errorf("update: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, desired.GetName(), err)
	}
	return nil
}

// ownerReference is a non-controller reference to owner: the objects it owns are shared, and
// blockOwnerDeletion stays unset so that deleting an owner never waits for them.
func ownerReference(owner client.Object, scheme *runtime.Scheme) (metav1.OwnerReference, error) {
	gvk, err := apiutil.GVKForObject(owner, scheme)
	if err != nil {
		return metav1.OwnerReference{}, fmt.Errorf("owner reference to %s: %w", owner.GetName(), err)
	}
	return metav1.OwnerReference{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: owner.GetName(), UID: owner.GetUID()}, nil
}

// packerAccessFailed reports a failure to ensure packer access in the log and returns it as the
// Ready problem of the object (whose status update tells it as a Warning event).
func packerAccessFailed(ctx context.Context, err error) *notReady {
	log.FromContext(ctx).Error(err, "cannot ensure the packer ServiceAccount and RoleBinding")
	return &notReady{desv1.ReasonPackerAccessFailed, "packer access: " + err.Error()}
}
