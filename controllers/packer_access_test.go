package controllers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
	"github.com/datavision/des/test/testworld"
)

func owner(name, uid string) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: desv1.GroupVersion.String(), Kind: "DesShard", Name: name, UID: types.UID(uid)}
}

func TestDesiredPackerAccess(t *testing.T) {
	cases := []struct{ namespace, account string }{
		{"scans", "des-packer"},
		{"logs", "des-runner"},
	}
	for _, tc := range cases {
		sa, rb := desiredPackerAccess(tc.namespace, tc.account, owner("daily", "u1"))
		for _, m := range []metav1.Object{sa, rb} {
			if m.GetNamespace() != tc.namespace || m.GetLabels()[protocol.LabelManagedBy] != protocol.ManagedByDES ||
				len(m.GetOwnerReferences()) != 1 || m.GetOwnerReferences()[0] != owner("daily", "u1") {
				t.Errorf("%s/%s: %+v", tc.namespace, m.GetName(), m)
			}
		}
		wantSubject := rbacv1.Subject{Kind: "ServiceAccount", Name: tc.account, Namespace: tc.namespace}
		if sa.Name != tc.account || rb.Name != "des-packer" ||
			rb.RoleRef != (rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "des-packer-role"}) ||
			len(rb.Subjects) != 1 || rb.Subjects[0] != wantSubject {
			t.Errorf("%s: ServiceAccount %s, RoleBinding %s %+v %+v", tc.namespace, sa.Name, rb.Name, rb.RoleRef, rb.Subjects)
		}
	}
}

func TestMergeShared(t *testing.T) {
	managed := map[string]string{protocol.LabelManagedBy: protocol.ManagedByDES}
	cases := []struct {
		name        string
		labels      map[string]string
		owners      []metav1.OwnerReference
		want        []metav1.OwnerReference
		wantChanged bool
	}{
		{"already owned", managed, []metav1.OwnerReference{owner("a", "u1")}, []metav1.OwnerReference{owner("a", "u1")}, false},
		{"a second owner is added", managed, []metav1.OwnerReference{owner("b", "u2")}, []metav1.OwnerReference{owner("b", "u2"), owner("a", "u1")}, true},
		{"a recreated owner replaces its stale reference", managed, []metav1.OwnerReference{owner("a", "old")}, []metav1.OwnerReference{owner("a", "u1")}, true},
		{"the label comes back", map[string]string{"team": "x"}, []metav1.OwnerReference{owner("a", "u1")}, []metav1.OwnerReference{owner("a", "u1")}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			current := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Labels: tc.labels, OwnerReferences: tc.owners,
				Annotations: map[string]string{"eks.amazonaws.com/role-arn": "arn"}}}
			desired, _ := desiredPackerAccess("ns", "des-packer", owner("a", "u1"))
			changed := mergeShared(current, desired)
			if changed != tc.wantChanged || len(current.OwnerReferences) != len(tc.want) {
				t.Fatalf("changed %v owners %+v; want %v %+v", changed, current.OwnerReferences, tc.wantChanged, tc.want)
			}
			for i := range tc.want {
				if current.OwnerReferences[i] != tc.want[i] {
					t.Errorf("owner %d = %+v, want %+v", i, current.OwnerReferences[i], tc.want[i])
				}
			}
			if current.Labels[protocol.LabelManagedBy] != protocol.ManagedByDES || current.Annotations["eks.amazonaws.com/role-arn"] != "arn" {
				t.Errorf("labels %v annotations %v", current.Labels, current.Annotations)
			}
		})
	}
}

func TestMergeRoleBinding(t *testing.T) {
	_, desired := desiredPackerAccess("ns", "des-packer", owner("a", "u1"))
	cases := []struct {
		name         string
		mutate       func(*rbacv1.RoleBinding)
		wantChanged  bool
		wantErr      string
		wantSubjects int
	}{
		{"as desired", func(*rbacv1.RoleBinding) {}, false, "", 1},
		{"the account changed", func(rb *rbacv1.RoleBinding) { rb.Subjects[0].Name = "old" }, true, "", 2},
		{"another role", func(rb *rbacv1.RoleBinding) { rb.RoleRef.Name = "admin" }, false, "binds ClusterRole admin", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			current := desired.DeepCopy()
			tc.mutate(current)
			changed, err := mergeRoleBinding(current, desired)
			if changed != tc.wantChanged || (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) ||
				len(current.Subjects) != tc.wantSubjects {
				t.Fatalf("changed %v err %v subjects %+v", changed, err, current.Subjects)
			}
		})
	}
}

// packerAccess reads the packer ServiceAccount and RoleBinding of the test namespace; nil when absent.
func (e *testEnv) packerAccess(account string) (*corev1.ServiceAccount, *rbacv1.RoleBinding) {
	e.t.Helper()
	sa := &corev1.ServiceAccount{}
	if err := e.c.Get(e.ctx, client.ObjectKey{Namespace: e.ns, Name: account}, sa); apierrors.IsNotFound(err) {
		sa = nil
	} else if err != nil {
		e.t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{}
	if err := e.c.Get(e.ctx, client.ObjectKey{Namespace: e.ns, Name: "des-packer"}, rb); apierrors.IsNotFound(err) {
		rb = nil
	} else if err != nil {
		e.t.Fatal(err)
	}
	return sa, rb
}

func ownerNames(o metav1.Object) []string {
	var names []string
	for _, r := range o.GetOwnerReferences() {
		if r.Controller != nil && *r.Controller {
			names = append(names, "controller:"+r.Name)
			continue
		}
		names = append(names, r.Kind+"/"+r.Name)
	}
	return names
}

func TestPackerAccessIsSharedByItsOwners(t *testing.T) {
	e := newTestEnv(t)
	e.create(sampleSource("src"))
	daily := sampleShard("daily", "src", 0)
	e.create(daily)
	r := e.shardReconciler()

	e.reconcile(r, "daily")
	sa, rb := e.packerAccess("des-packer")
	if sa == nil || rb == nil {
		t.Fatalf("after the first DesShard: ServiceAccount %v, RoleBinding %v", sa, rb)
	}
	for _, o := range []metav1.Object{sa, rb} {
		if got := strings.Join(ownerNames(o), ","); got != "DesShard/daily" || o.GetOwnerReferences()[0].UID != daily.UID {
			t.Errorf("%s owners = %s", o.GetName(), got)
		}
		if o.GetLabels()[protocol.LabelManagedBy] != protocol.ManagedByDES {
			t.Errorf("%s labels = %v", o.GetName(), o.GetLabels())
		}
	}
	if rb.RoleRef.Name != "des-packer-role" || len(rb.Subjects) != 1 || rb.Subjects[0].Name != "des-packer" || rb.Subjects[0].Namespace != e.ns {
		t.Errorf("RoleBinding %+v %+v", rb.RoleRef, rb.Subjects)
	}
	if got := e.jobs("daily"); len(got) != 1 {
		t.Errorf("jobs = %v", got)
	}

	// A second DesShard and the DesSource become owners too: an update of the same objects.
	e.create(sampleShard("hourly", "src", 1))
	e.reconcile(r, "hourly")
	e.reconcile(e.sourceReconciler(), "src")
	sa2, rb2 := e.packerAccess("des-packer")
	for _, pair := range [][2]metav1.Object{{sa, sa2}, {rb, rb2}} {
		before, after := pair[0], pair[1]
		if after.GetUID() != before.GetUID() {
			t.Errorf("%s was recreated", after.GetName())
		}
		if got := strings.Join(ownerNames(after), ","); got != "DesShard/daily,DesShard/hourly,DesSource/src" {
			t.Errorf("%s owners = %s", after.GetName(), got)
		}
	}

	// Reconciling again changes nothing.
	e.reconcile(r, "daily")
	if sa3, _ := e.packerAccess("des-packer"); sa3.ResourceVersion != sa2.ResourceVersion {
		t.Errorf("a reconcile with nothing to add updated the ServiceAccount")
	}
}

func TestPackerAccessLeavesTheUsersAccountsAlone(t *testing.T) {
	t.Run("spec.job.serviceAccountName", func(t *testing.T) {
		e := newTestEnv(t)
		e.create(sampleSource("src"))
		ds := sampleShard("daily", "src", 0)
		ds.Spec.Job.ServiceAccountName = "mine"
		e.create(ds)
		r := e.shardReconciler()
		r.Jobs.AllowedServiceAccounts = []string{"mine"}
		e.reconcile(r, "daily")
		if sa, rb := e.packerAccess("mine"); sa != nil || rb != nil {
			t.Fatalf("DES created ServiceAccount %v / RoleBinding %v for the user's own account", sa != nil, rb != nil)
		}
		if got := e.jobs("daily"); len(got) != 1 {
			t.Errorf("jobs = %v", got)
		}
	})
	t.Run("made by hand", func(t *testing.T) {
		e := newTestEnv(t)
		e.create(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "des-packer", Annotations: map[string]string{"team": "storage"}}})
		e.create(sampleSource("src"))
		e.reconcile(e.sourceReconciler(), "src")
		sa, rb := e.packerAccess("des-packer")
		if len(sa.OwnerReferences) != 0 || sa.Labels[protocol.LabelManagedBy] != "" {
			t.Errorf("the hand-made ServiceAccount was adopted: %+v", sa.ObjectMeta)
		}
		if rb == nil || strings.Join(ownerNames(rb), ",") != "DesSource/src" {
			t.Errorf("RoleBinding = %+v", rb)
		}
	})
}

func TestPackerAccessFailureShowsInStatus(t *testing.T) {
	e := newTestEnv(t)
	// A DES-labelled binding of another role cannot be repaired: its role is immutable.
	e.create(&rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "des-packer", Labels: map[string]string{protocol.LabelManagedBy: protocol.ManagedByDES}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
	})
	e.create(sampleSource("src"))
	e.create(sampleShard("daily", "src", 0))
	e.reconcile(e.shardReconciler(), "daily")
	e.reconcile(e.sourceReconciler(), "src")

	ds := &desv1.DesShard{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "daily"}}
	e.get(ds)
	src := &desv1.DesSource{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "src"}}
	e.get(src)
	for kind, conds := range map[string][]metav1.Condition{"DesShard": ds.Status.Conditions, "DesSource": src.Status.Conditions} {
		c := meta.FindStatusCondition(conds, desv1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionFalse || c.Reason != string(desv1.ReasonPackerAccessFailed) || !strings.Contains(c.Message, "ClusterRole view") {
			t.Errorf("%s Ready = %+v", kind, c)
		}
	}
	if got := e.jobs("daily"); len(got) != 0 {
		t.Errorf("jobs created without packer access: %v", got)
	}
	for range 2 {
		select {
		case ev := <-e.events.Events:
			if !strings.HasPrefix(ev, "Warning "+string(desv1.ReasonPackerAccessFailed)+" ") {
				t.Errorf("event %q", ev)
			}
		default:
			t.Fatal("no Warning event")
		}
	}
}

// TestManagerRoleSufficesForPackerAccess reconciles as a user holding only the generated manager
// role (config/rbac/role.yaml): binding des-packer-role must work through `bind`, without the
// manager holding the packer's rights in the namespace.
func TestManagerRoleSufficesForPackerAccess(t *testing.T) {
	e := newTestEnv(t)
	kube := testworld.K8s(t)
	user := "des-test-manager-" + e.ns
	managerRole := readClusterRole(t, "role.yaml")
	managerRole.Name = user
	packerRole := readClusterRole(t, "packer_role.yaml")
	for _, obj := range []client.Object{managerRole, packerRole, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}} {
		if err := e.c.Create(e.ctx, obj); err != nil && (!apierrors.IsAlreadyExists(err) || obj.GetName() != packerClusterRoleName) {
			t.Fatalf("create %s: %v", obj.GetName(), err)
		}
		if obj.GetName() != packerClusterRoleName { // shared by the tests of this package
			t.Cleanup(func() { _ = e.c.Delete(e.ctx, obj) })
		}
	}
	cfg := rest.CopyConfig(kube.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	asManager, err := client.New(cfg, client.Options{Scheme: testScheme})
	if err != nil {
		t.Fatal(err)
	}

	e.create(sampleSource("src"))
	e.create(sampleShard("daily", "src", 0))
	r := e.shardReconciler()
	r.Client = asManager
	e.reconcile(r, "daily")
	ds := &desv1.DesShard{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "daily"}}
	e.get(ds)
	if c := meta.FindStatusCondition(ds.Status.Conditions, desv1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("Ready = %+v", c)
	}
	if sa, rb := e.packerAccess("des-packer"); sa == nil || rb == nil {
		t.Fatalf("ServiceAccount %v, RoleBinding %v", sa != nil, rb != nil)
	}
}

func readClusterRole(t *testing.T, file string) *rbacv1.ClusterRole {
	t.Helper()
	root, err := testworld.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "config", "rbac", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	role := &rbacv1.ClusterRole{}
	if err := yaml.NewYAMLOrJSONDecoder(f, 4096).Decode(role); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return role
}
