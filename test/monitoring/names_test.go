package monitoring

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/datavision/des/controllers"
	"github.com/datavision/des/internal/assign"
	"github.com/datavision/des/internal/marker"
	"github.com/datavision/des/internal/nodeid"
	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/internal/packer"
	"github.com/datavision/des/internal/reader"
)

// fqName reads a metric's name from its description: Desc has no accessor, and its String form
// (`Desc{fqName: "...", ...}`) is what client_golang prints for it.
var fqName = regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)

// registeredNames are the names of every metric the DES components register, from their real
// constructors: vectors without a value yet are described all the same, which a scrape would not show.
func registeredNames(t *testing.T) map[string]bool {
	t.Helper()
	var sets []prometheus.Collector

	// The controller: controller-runtime's registry (controller_runtime_*, workqueue_*, and the counters
	// package controllers registers at init) and the collectors cmd/manager adds to it.
	cr, ok := crmetrics.Registry.(prometheus.Collector)
	if !ok {
		t.Fatalf("controller-runtime's metrics.Registry is a %T, not a Collector", crmetrics.Registry)
	}
	sets = append(sets, cr, &controllers.ContainerPhaseCollector{}, &controllers.StatusCollector{})

	packerReg := prometheus.NewRegistry()
	packer.NewMetrics(packerReg) // source deletion (reclaim) included
	markerReg := prometheus.NewRegistry()
	marker.NewMetrics(markerReg)
	sets = append(sets, packerReg, markerReg)

	// The name service, with the Go and process collectors assign.New adds when given no registry (as
	// `manager assign` does).
	assignReg := prometheus.NewRegistry()
	assignReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if _, err := assign.New(assign.Config{Registry: assignReg, Lease: nodeid.Options{Namespace: "des-system", Identity: "check"}}, nil); err != nil {
		t.Fatal(err)
	}
	sets = append(sets, assignReg)

	// The reader: its metrics live on the server's own registry. Building it sends nothing to the store.
	store, err := objstore.New(context.Background(), objstore.Config{Endpoint: "http://127.0.0.1:1", Region: "us-east-1", PathStyle: true, AccessKeyID: "check", SecretAccessKey: "check"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := reader.New(reader.Config{Store: store, Bucket: "archive", Prefixes: []string{"des"}, ShardBits: 12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)

	names := map[string]bool{}
	ch := make(chan *prometheus.Desc)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for d := range ch {
			if m := fqName.FindStringSubmatch(d.String()); m != nil {
				names[m[1]] = true
			}
		}
	}()
	for _, c := range sets {
		c.Describe(ch)
	}
	srv.DescribeMetrics(ch)
	close(ch)
	<-done
	if len(names) < 40 {
		t.Fatalf("only %d metric names described: %v", len(names), names)
	}
	return names
}

// scrapeNames are series Prometheus makes itself for every target.
var scrapeNames = map[string]bool{"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true}

// unknownNames are the referenced names that no component registers. A histogram's _bucket, _sum and
// _count series (and a summary's _sum and _count) belong to its registered name. A description does
// not say a metric's type, so a histogram is told by its name: DES's (and Go's) histograms and
// summaries are named for their unit, _seconds or _bytes, as Prometheus's naming rules ask, and no
// counter (_total) or unitless gauge is one.
func unknownNames(registered map[string]bool, referenced []string) []string {
	var out []string
	for _, n := range referenced {
		if registered[n] || scrapeNames[n] {
			continue
		}
		known := false
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, ok := strings.CutSuffix(n, suffix)
			if ok && registered[base] && (strings.HasSuffix(base, "_seconds") || strings.HasSuffix(base, "_bytes")) {
				known = true
			}
		}
		if !known {
			out = append(out, n)
		}
	}
	return out
}

// metricNames asks the real PromQL parser (bin/promql-names) which metric names exprs read; an
// expression that does not parse fails.
func metricNames(t *testing.T, exprs []string) []string {
	t.Helper()
	var in strings.Builder
	for _, e := range exprs {
		in.WriteString(strings.ReplaceAll(e, "\n", " ") + "\n")
	}
	out, err := run([]byte(in.String()), tool(t, "promql-names"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))
}

// grafanaRange stands in for the range variables Grafana fills in before a query reaches Prometheus.
var grafanaRange = strings.NewReplacer("$__rate_interval", "5m", "${__rate_interval}", "5m", "$__interval", "1m", "${__interval}", "1m", "$__range", "1h", "${__range}", "1h")

// labelValues is the one templating query form the dashboard uses: label_values(metric, label).
var labelValues = regexp.MustCompile(`^label_values\(\s*([^,]+?)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)$`)

// dashboardExprs are the PromQL expressions of docs/grafana-dashboard.json: every panel target's expr
// (rows' nested panels too) and the metric of each templating query.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, "docs/grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels     []dashPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("panel %q has a target without expr", p.Title)
				}
				exprs = append(exprs, grafanaRange.Replace(tg.Expr))
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("templating variable %s: query %v is not label_values(metric, label), which this check reads", v.Name, v.Query)
			continue
		}
		exprs = append(exprs, m[1])
	}
	return exprs
}

type dashPanel struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"`
}

// ruleExprs are the expressions of the shipped PrometheusRule.
func ruleExprs(t *testing.T) []string {
	t.Helper()
	var exprs []string
	for _, g := range ruleGroups(t) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			e, _ := r.(map[string]any)["expr"].(string)
			exprs = append(exprs, e)
		}
	}
	return exprs
}

// TestMetricNamesExist: the dashboard and the alerts may only read metrics that DES registers; a
// renamed metric would otherwise leave an empty panel or an alert that can never fire.
func TestMetricNamesExist(t *testing.T) {
	registered := registeredNames(t)
	for _, c := range []struct {
		source string
		exprs  func(*testing.T) []string
	}{
		{"docs/grafana-dashboard.json", dashboardExprs},
		{"config/prometheus/prometheusrule.yaml", ruleExprs},
	} {
		t.Run(c.source, func(t *testing.T) {
			names := metricNames(t, c.exprs(t))
			if len(names) == 0 {
				t.Fatal("no metric names found")
			}
			if bad := unknownNames(registered, names); len(bad) > 0 {
				t.Errorf("%s reads metrics no DES component registers: %v", c.source, bad)
			}
		})
	}
}

// TestMetricNameCheckFails proves the check catches a misspelling, and that an expression Prometheus
// would refuse fails before any name is compared.
func TestMetricNameCheckFails(t *testing.T) {
	registered := registeredNames(t)
	cases := []struct {
		expr string
		want []string
	}{
		{`sum(rate(des_reader_http_request_total[5m]))`, []string{"des_reader_http_request_total"}},
		{`histogram_quantile(0.9, sum by (le) (rate(des_packer_fetch_duration_second_bucket[5m])))`, []string{"des_packer_fetch_duration_second_bucket"}},
		{`des_container_recoveries_total_bucket`, []string{"des_container_recoveries_total_bucket"}}, // _bucket of a counter
		{`des_containers_count`, []string{"des_containers_count"}},                                   // _count of a gauge
		{`rate(des_packer_fetch_duration_seconds_count[5m]) + des_packer_container_object_bytes_sum`, nil},
		{`max by (namespace) (des_containers) > on (namespace) des_containerz`, []string{"des_containerz"}},
		{`sum(rate(des_reader_http_requests_total[5m]))`, nil},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			got := unknownNames(registered, metricNames(t, []string{c.expr}))
			if !slices.Equal(got, c.want) {
				t.Fatalf("unknown names %v, want %v", got, c.want)
			}
		})
	}
	t.Run("expression that does not parse", func(t *testing.T) {
		if _, err := run([]byte("sum(rate(des_containers[5m])\n"), tool(t, "promql-names")); err == nil {
			t.Fatal("promql-names accepted it")
		}
	})
}
