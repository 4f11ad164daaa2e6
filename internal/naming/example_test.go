package naming_test

import (
	"fmt"
	"time"

	"github.com/datavision/des/internal/naming"
)

func Example() {
	// A fixed clock makes the output reproducible; services leave Now nil to use time.Now.
	at := time.Date(2026, 2, 24, 13, 14, 15, 678e6, time.UTC)
	g, err := naming.NewGenerator(naming.Config{Prefix: "DES", Node: 3, Now: func() time.Time { return at }})
	if err != nil {
		panic(err)
	}
	name, _ := g.New()
	forDay, _ := g.NewForDay(naming.Day{Year: 2020, Month: time.January, Day: 31})
	n, _ := naming.Parse(name + ".pdf")
	shard, _ := naming.Shard(name+".pdf", 8)
	fmt.Println(name)
	fmt.Println(forDay)
	fmt.Println(n.Day, n.Node, n.Seq, n.Ext, shard)
	// Output:
	// DES_20260224_(8FC93AFE0300_93)
	// DES_20200131_(8FC93AFE0301_94)
	// 20260224 3 0 .pdf 159
}
