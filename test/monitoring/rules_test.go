package monitoring

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// ruleGroups are spec.groups of the PrometheusRule config/prometheus ships: a Prometheus rule file's
// groups, as the operator hands them to Prometheus.
func ruleGroups(t testing.TB) []any {
	t.Helper()
	rules := byKind(kustomize(t, "config/prometheus"), "PrometheusRule")
	if len(rules) != 1 {
		t.Fatalf("config/prometheus has %d PrometheusRules, want 1", len(rules))
	}
	groups, ok, err := unstructured.NestedSlice(rules[0].Object, "spec", "groups")
	if err != nil || !ok || len(groups) == 0 {
		t.Fatalf("PrometheusRule %s has no spec.groups (%v)", rules[0].GetName(), err)
	}
	return groups
}

// writeRules writes groups as a rule file in dir, passing each rule through edit (nil: unchanged).
func writeRules(t testing.TB, dir string, groups []any, edit func(rule map[string]any)) string {
	t.Helper()
	groups = deepCopy(t, groups)
	for _, g := range groups {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			if edit != nil {
				edit(r.(map[string]any))
			}
		}
	}
	data, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func deepCopy(t testing.TB, v []any) []any {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	if err := yaml.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// withoutDescription drops the long description annotation for the unit tests: promtool compares
// annotations in full, and the tests pin labels and the summary (whose templates use $labels and
// $value). `promtool check rules` still parses every template of the rules as shipped.
func withoutDescription(rule map[string]any) {
	if a, ok := rule["annotations"].(map[string]any); ok {
		delete(a, "description")
	}
}

// unitTests copies testdata/alerts_test.yaml beside a rule file written from groups, for `promtool
// test rules` (the test file names rules.yaml).
func unitTests(t testing.TB, groups []any, edit func(rule map[string]any)) string {
	t.Helper()
	dir := t.TempDir()
	writeRules(t, dir, groups, func(r map[string]any) {
		withoutDescription(r)
		if edit != nil {
			edit(r)
		}
	})
	data, err := os.ReadFile("testdata/alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "alerts_test.yaml")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAlertRules checks the shipped rules with promtool (PromQL, durations, templates) and runs the unit
// tests in testdata/alerts_test.yaml, which feed series to every alert and say when it fires and when
// it must not.
func TestAlertRules(t *testing.T) {
	promtool := tool(t, "promtool")
	groups := ruleGroups(t)
	if out, err := run(nil, promtool, "check", "rules", writeRules(t, t.TempDir(), groups, nil)); err != nil {
		t.Fatalf("promtool check rules: %v", err)
	} else {
		t.Logf("%s", out)
	}
	if out, err := run(nil, promtool, "test", "rules", unitTests(t, groups, nil)); err != nil {
		t.Fatalf("promtool test rules: %v", err)
	} else {
		t.Logf("%s", out)
	}
}

// TestEveryAlertHasAUnitTest: an alert without a test that makes it fire is an alert nobody has seen
// fire.
func TestEveryAlertHasAUnitTest(t *testing.T) {
	data, err := os.ReadFile("testdata/alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tg := range file.Tests {
		for _, at := range tg.AlertRuleTest {
			fires[at.Alertname] = fires[at.Alertname] || len(at.ExpAlerts) > 0
		}
	}
	for _, g := range ruleGroups(t) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			name, _ := r.(map[string]any)["alert"].(string)
			if name != "" && !fires[name] {
				t.Errorf("alert %s has no unit test in testdata/alerts_test.yaml that expects it to fire", name)
			}
		}
	}
}

// TestPromtoolRefusesBrokenRules proves both promtool steps can fail: a rule that does not parse fails
// the check, and an alert whose threshold no longer matches its unit test fails the tests.
func TestPromtoolRefusesBrokenRules(t *testing.T) {
	promtool := tool(t, "promtool")
	groups := ruleGroups(t)
	cases := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"expression that does not parse", func(t *testing.T) []string {
			t.Helper()
			return []string{"check", "rules", writeRules(t, t.TempDir(), groups, func(r map[string]any) {
				if r["alert"] == "DesRowsFailed" {
					r["expr"] = `max by (namespace, dessource) (des_source_rows{state="failed"} > 0`
				}
			})}
		}},
		{"template that does not parse", func(t *testing.T) []string {
			t.Helper()
			return []string{"check", "rules", writeRules(t, t.TempDir(), groups, func(r map[string]any) {
				if r["alert"] == "DesRowsFailed" {
					r["annotations"].(map[string]any)["summary"] = "{{ $labels.namespace "
				}
			})}
		}},
		{"threshold the unit test does not reach", func(t *testing.T) []string {
			t.Helper()
			return []string{"test", "rules", unitTests(t, groups, func(r map[string]any) {
				if r["alert"] == "DesRowsFailed" {
					r["expr"] = strings.Replace(r["expr"].(string), "> 0", "> 100", 1)
				}
			})}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := run(nil, promtool, c.args(t)...); err == nil {
				t.Fatal("promtool passed it")
			}
		})
	}
}
