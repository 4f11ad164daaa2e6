package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/datavision/des/test/testworld"
)

// asUser is a client of the test API server acting as a user who holds only rules in w's namespace.
func (w *world) asUser(name string, rules []rbacv1.PolicyRule) client.Client {
	w.t.Helper()
	user := name + "-" + w.ns
	w.create(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules})
	w.create(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}})
	return w.impersonate(user)
}

// desRead reads DES's resources of the namespace.
var desRead = rbacv1.PolicyRule{APIGroups: []string{"des.datavision.io"}, Resources: []string{"descontainers", "desshards", "dessources"},
	Verbs: []string{"get", "list"}}

// TestUserRBACOnly: verify, ls and cat act with the user's rights alone. Get on the two Secrets the
// resources name is enough; without it, or without the resources, the message names the rule.
func TestUserRBACOnly(t *testing.T) {
	w := newWorld(t, true)
	secrets := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"},
		ResourceNames: []string{"archive-s3", "catalog"}}
	enough := w.asUser("des-reader", []rbacv1.PolicyRule{desRead, secrets})
	expect(t, w.runAs(enough, "verify", w.con.Name), exitOK, []string{"verdict:  OK"}, nil)
	expect(t, w.runAs(enough, "ls", w.con.Name), exitOK, []string{"N_big"}, nil)
	if r := w.runAs(enough, "cat", "N_2"); r.code != exitOK || r.stdout != string(w.files["N_2"]) {
		t.Fatalf("cat as the user: %v", r)
	}

	noSecrets := w.asUser("des-no-secrets", []rbacv1.PolicyRule{desRead})
	expect(t, w.runAs(noSecrets, "verify", w.con.Name), exitError, nil,
		[]string{"your RBAC must allow get on secrets/archive-s3 in " + w.ns})
	expect(t, w.runAs(noSecrets, "cat", "N_2"), exitError, nil,
		[]string{"your RBAC must allow get on secrets/catalog in " + w.ns})

	nothing := w.asUser("des-nothing", []rbacv1.PolicyRule{secrets})
	expect(t, w.runAs(nothing, "ls", w.con.Name), exitError, nil,
		[]string{"your RBAC must allow get on descontainers in " + w.ns})
	expect(t, w.runAs(nothing, "cat", "N_2"), exitError, nil,
		[]string{"your RBAC must allow list on dessources in " + w.ns})
}

// TestShippedUserRoleIsEnough: a person bound to the shipped ClusterRole des-user
// (config/rbac/user_role.yaml) in the namespace, plus get on the two Secrets by name, can run every
// command of the plugin; with des-user alone, the commands that stay in the cluster still work.
func TestShippedUserRoleIsEnough(t *testing.T) {
	w := newWorld(t, true)
	role := readUserRole(t)
	role.Name = "des-user-" + w.ns // the API server is shared by the package's tests
	if err := w.kube.Create(w.ctx, role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.kube.Delete(context.Background(), role) })
	user := "alice-" + w.ns
	w.create(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-des"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}})
	alice := w.impersonate(user)

	expect(t, w.runAs(alice, "status"), exitOK, []string{"src", "daily"}, nil)
	expect(t, w.runAs(alice, "why", "daily"), exitOK, []string{"nothing holds DesShard daily back"}, nil)
	expect(t, w.runAs(alice, "pack-now", "daily", "--wait=false"), exitOK, []string{"asked for a run"}, nil)
	expect(t, w.runAs(alice, "verify", w.con.Name), exitError, nil, []string{"your RBAC must allow get on secrets/archive-s3"})

	// The Secrets, by name, in a Role of the namespace's own: now every command works.
	w.create(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "alice-secrets"}, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{"archive-s3", "catalog"}}}})
	w.create(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "alice-secrets"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "alice-secrets"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}})
	expect(t, w.runAs(alice, "verify", w.con.Name), exitOK, []string{"verdict:  OK"}, nil)
	expect(t, w.runAs(alice, "ls", w.con.Name), exitOK, []string{"N_big"}, nil)
	if r := w.runAs(alice, "cat", "N_2"); r.code != exitOK || r.stdout != string(w.files["N_2"]) {
		t.Fatalf("cat as alice: %v", r)
	}
}

// impersonate is a client of the test API server acting as user.
func (w *world) impersonate(user string) client.Client {
	w.t.Helper()
	kube := testworld.K8s(w.t)
	cfg := rest.CopyConfig(kube.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func readUserRole(t *testing.T) *rbacv1.ClusterRole {
	t.Helper()
	root, err := testworld.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "config", "rbac", "user_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(b, role); err != nil {
		t.Fatalf("user_role.yaml: %v", err)
	}
	return role
}
