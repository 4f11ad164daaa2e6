// Command promql-names prints the metric names PromQL expressions read, one per line, sorted and
// without repeats. It reads one expression per line of standard input (empty lines are skipped) and
// fails, naming the expression, on any that does not parse: a dashboard or rule that Prometheus would
// refuse must not pass a check that only looks at its names.
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	names, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "promql-names:", err)
		os.Exit(1)
	}
	for _, n := range names {
		fmt.Println(n)
	}
}

func run() ([]string, error) {
	seen := map[string]bool{}
	// The default options: what a Prometheus without feature flags accepts.
	p := parser.NewParser(parser.Options{})
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		expr, err := p.ParseExpr(line)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		var bad error
		parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			name := vs.Name
			if name == "" { // {__name__="..."} instead of a bare name
				for _, m := range vs.LabelMatchers {
					if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
						name = m.Value
					}
				}
			}
			if name == "" {
				bad = fmt.Errorf("%q: a selector without a metric name cannot be checked", line)
				return bad
			}
			seen[name] = true
			return nil
		})
		if bad != nil {
			return nil, bad
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}
