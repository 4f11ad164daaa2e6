package monitoring

import (
	"context"
	"os"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/test/testworld"
)

// createStrict creates obj in ns the way kubectl apply does: the API server validates it against the
// CRD's schema and, with strict field validation, refuses fields the schema does not know (which it
// would otherwise drop in silence, leaving a ServiceMonitor that quietly does less than it says).
func createStrict(ctx context.Context, c client.Client, ns string, obj *unstructured.Unstructured) error {
	o := obj.DeepCopy()
	o.SetNamespace(ns)
	return c.Create(ctx, o, client.FieldValidation("Strict"))
}

// TestPrometheusManifestsValid creates every object of `kustomize build config/prometheus` in a real
// kube-apiserver serving the prometheus-operator's CRDs.
func TestPrometheusManifestsValid(t *testing.T) {
	kube := testworld.K8s(t)
	ns := kube.NewNamespace(t)
	objs := kustomize(t, "config/prometheus")
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
		if err := createStrict(context.Background(), kube.Client, ns, o); err != nil {
			t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	want := map[string]int{"ServiceMonitor": 2, "PodMonitor": 1, "PrometheusRule": 1}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("config/prometheus has %d %s, want %d (all kinds: %v)", kinds[k], k, n, kinds)
		}
	}
	if len(kinds) != len(want) {
		t.Errorf("config/prometheus has kinds %v, want only %v", kinds, want)
	}
}

// TestPrometheusManifestsInvalidRefused proves the check above can fail: the same objects, each with
// one mistake, are refused by the CRDs' schemas.
func TestPrometheusManifestsInvalidRefused(t *testing.T) {
	kube := testworld.K8s(t)
	ns := kube.NewNamespace(t)
	objs := kustomize(t, "config/prometheus")
	first := func(kind string) *unstructured.Unstructured {
		t.Helper()
		of := byKind(objs, kind)
		if len(of) == 0 {
			t.Fatalf("config/prometheus has no %s", kind)
		}
		return of[0].DeepCopy()
	}
	setIn := func(o *unstructured.Unstructured, list string, field string, v any) {
		t.Helper()
		path := strings.Split(list, ".")
		items, _, err := unstructured.NestedSlice(o.Object, path...)
		if err != nil || len(items) == 0 {
			t.Fatalf("%s has no %s", o.GetKind(), list)
		}
		item := items[0].(map[string]any)
		if v == nil {
			delete(item, field)
		} else {
			item[field] = v
		}
		if err := unstructured.SetNestedSlice(o.Object, items, path...); err != nil {
			t.Fatal(err)
		}
	}
	firstRule := func(o *unstructured.Unstructured, field string, v any) {
		t.Helper()
		groups, _, _ := unstructured.NestedSlice(o.Object, "spec", "groups")
		g := groups[0].(map[string]any)
		rules := g["rules"].([]any)
		r := rules[0].(map[string]any)
		if v == nil {
			delete(r, field)
		} else {
			r[field] = v
		}
		if err := unstructured.SetNestedSlice(o.Object, groups, "spec", "groups"); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		obj    func() *unstructured.Unstructured
		reason string // in the API server's message
	}{
		{"misspelled ServiceMonitor endpoint field", func() *unstructured.Unstructured {
			o := first("ServiceMonitor")
			setIn(o, "spec.endpoints", "honourLabels", true)
			return o
		}, "unknown field"},
		{"ServiceMonitor interval that is no duration", func() *unstructured.Unstructured {
			o := first("ServiceMonitor")
			setIn(o, "spec.endpoints", "interval", "30 seconds")
			return o
		}, "interval"},
		{"PodMonitor scheme that does not exist", func() *unstructured.Unstructured {
			o := first("PodMonitor")
			setIn(o, "spec.podMetricsEndpoints", "scheme", "gopher")
			return o
		}, "scheme"},
		{"alert whose for is no duration", func() *unstructured.Unstructured {
			o := first("PrometheusRule")
			firstRule(o, "for", "ten minutes")
			return o
		}, "for"},
		{"rule without an expression", func() *unstructured.Unstructured {
			o := first("PrometheusRule")
			firstRule(o, "expr", nil)
			return o
		}, "expr"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := createStrict(context.Background(), kube.Client, ns, c.obj())
			if err == nil {
				t.Fatal("the API server accepted it")
			}
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
				t.Fatalf("refused for another reason: %v", err)
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("refusal does not mention %q: %v", c.reason, err)
			}
		})
	}
}

// TestMonitorsSelectTheDeployment checks that the ServiceMonitors and the PodMonitor find what the
// other kustomizations deploy: a selector or port name that matches nothing scrapes nothing, and no
// schema can tell.
func TestMonitorsSelectTheDeployment(t *testing.T) {
	mon := kustomize(t, "config/prometheus")
	var deployed []*unstructured.Unstructured
	for _, k := range []string{"config/manager", "config/assign", "config/reader"} {
		deployed = append(deployed, kustomize(t, k)...)
	}
	sample, err := os.ReadFile(repoPath(t, "config/samples/reader-sidecar-pod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sidecar, err := decodeObjects(sample)
	if err != nil {
		t.Fatal(err)
	}
	deployed = append(deployed, sidecar...)

	// Pod templates of the Deployments, and the sample Pod.
	type pod struct {
		name   string
		labels map[string]string
		ports  map[string]bool // container (and init container) port names
	}
	var pods []pod
	for _, o := range deployed {
		var spec map[string]any
		var labels map[string]string
		switch o.GetKind() {
		case "Deployment":
			spec, _, _ = unstructured.NestedMap(o.Object, "spec", "template", "spec")
			labels, _, _ = unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
		case "Pod":
			spec, _, _ = unstructured.NestedMap(o.Object, "spec")
			labels = o.GetLabels()
		default:
			continue
		}
		p := pod{name: o.GetKind() + " " + o.GetName(), labels: labels, ports: map[string]bool{}}
		for _, field := range []string{"containers", "initContainers"} {
			cs, _, _ := unstructured.NestedSlice(spec, field)
			for _, c := range cs {
				ports, _, _ := unstructured.NestedSlice(c.(map[string]any), "ports")
				for _, port := range ports {
					if n, ok := port.(map[string]any)["name"].(string); ok {
						p.ports[n] = true
					}
				}
			}
		}
		pods = append(pods, p)
	}
	matches := func(sel, labels map[string]string) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}

	for _, sm := range byKind(mon, "ServiceMonitor") {
		sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		found := false
		for _, svc := range byKind(deployed, "Service") {
			if svc.GetNamespace() != sm.GetNamespace() || !matches(sel, svc.GetLabels()) {
				continue
			}
			ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
			for _, ep := range endpoints {
				want := ep.(map[string]any)["port"]
				for _, p := range ports {
					pm := p.(map[string]any)
					if pm["name"] != want {
						continue
					}
					found = true
					// The Service's target port must be a port of the pods it selects.
					podSel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
					target, _ := pm["targetPort"].(string)
					for _, p := range pods {
						if matches(podSel, p.labels) && !p.ports[target] {
							t.Errorf("Service %s targets port %q that %s lacks", svc.GetName(), target, p.name)
						}
					}
				}
			}
		}
		if !found {
			t.Errorf("ServiceMonitor %s (selector %v, endpoints %v) selects no Service port in namespace %s", sm.GetName(), sel, endpoints, sm.GetNamespace())
		}
	}

	for _, pm := range byKind(mon, "PodMonitor") {
		sel, _, _ := unstructured.NestedStringMap(pm.Object, "spec", "selector", "matchLabels")
		endpoints, _, _ := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
		// Both ways the reader runs must be scraped: the read service and the sidecar.
		for _, want := range []string{"Deployment des-reader", "Pod scans-viewer"} {
			ok := false
			for _, p := range pods {
				if p.name != want || !matches(sel, p.labels) {
					continue
				}
				for _, ep := range endpoints {
					if p.ports[ep.(map[string]any)["port"].(string)] {
						ok = true
					}
				}
			}
			if !ok {
				t.Errorf("PodMonitor %s (selector %v) does not scrape %s", pm.GetName(), sel, want)
			}
		}
	}
}
