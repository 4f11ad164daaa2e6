package main

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	kube := testworld.K8s(w.t)
	cfg := rest.CopyConfig(kube.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: kube.Scheme})
	if err != nil {
		w.t.Fatal(err)
	}
	return c
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
