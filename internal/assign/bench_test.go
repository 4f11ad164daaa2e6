package assign_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/datavision/des/internal/naming"
	"github.com/datavision/des/test/testworld"
)

// BenchmarkNames compares names/s through POST /v1/names (count=1000, shards included, over loopback HTTP)
// with the generator called directly in the same run. Both are capped by the v1 layout at 256 names per
// millisecond of one node, i.e. 256,000 names/s.
func BenchmarkNames(b *testing.B) {
	b.Run("generator", func(b *testing.B) {
		g, err := naming.NewGenerator(naming.Config{Prefix: "DES", Node: 1})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := g.New(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "names/s")
	})
	b.Run("http-count-1000", func(b *testing.B) {
		r := startReplica(b, testworld.K8s(b).NewNamespace(b), "bench", time.Second)
		const count = 1000
		body := `{"count":1000}`
		c := &http.Client{}
		for b.Loop() {
			resp, err := c.Post(r.srv.URL+"/v1/names", "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
			if _, err := drain(resp); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*count)/b.Elapsed().Seconds(), "names/s")
	})
}

func drain(resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	return io.Copy(io.Discard, resp.Body)
}
