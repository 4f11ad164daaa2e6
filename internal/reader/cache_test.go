package reader

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestAdmit(t *testing.T) {
	r := func(cost int64, freq uint32) resident { return resident{cost: cost, freq: freq} }
	tests := []struct {
		name      string
		freq      uint32
		cost      int64
		used, max int64
		victims   []resident
		evict     int
		ok        bool
	}{
		{"fits without evicting", 1, 10, 50, 100, nil, 0, true},
		{"fits exactly", 1, 50, 50, 100, nil, 0, true},
		{"tie with the victim: rejected", 3, 40, 80, 100, []resident{r(40, 3)}, 0, false},
		{"asked more often than the victim", 4, 40, 80, 100, []resident{r(40, 3)}, 1, true},
		{"less often than the victim", 1, 40, 80, 100, []resident{r(40, 9)}, 0, false},
		{"needs two victims, beats both", 5, 70, 80, 100, []resident{r(40, 1), r(40, 4)}, 2, true},
		{"needs two victims, loses to the second", 5, 70, 80, 100, []resident{r(40, 1), r(40, 5)}, 0, false},
		{"one victim frees enough: the hotter second is not consulted", 2, 30, 90, 100, []resident{r(40, 1), r(40, 99)}, 1, true},
		{"victims cannot free enough", 9, 90, 100, 100, []resident{r(5, 0)}, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evict, ok := admit(tc.freq, tc.cost, tc.used, tc.max, tc.victims)
			if ok != tc.ok || (ok && evict != tc.evict) {
				t.Fatalf("admit = %d, %v; want %d, %v", evict, ok, tc.evict, tc.ok)
			}
		})
	}
}

func TestFrequencyAges(t *testing.T) {
	f := newFrequency(8)
	for range 5 {
		f.record("hot")
	}
	f.record("cold")
	if f.of("hot") != 5 || f.of("cold") != 1 || f.of("never") != 0 {
		t.Fatalf("counts %v", f.counts)
	}
	f.record("x")
	f.record("x") // the 8th request: everything halves, "cold" (1) is forgotten
	if f.of("hot") != 2 || f.of("x") != 1 || f.of("cold") != 0 {
		t.Fatalf("after aging: %v; want hot 2, x 1, cold gone", f.counts)
	}
	if _, ok := f.counts["cold"]; ok {
		t.Fatal("a zero count stays in the map")
	}
	g := newFrequency(1000)
	for range 100 {
		g.record("hot")
	}
	if g.of("hot") != maxFrequency {
		t.Fatalf("count %d after 100 requests, want the cap %d", g.of("hot"), maxFrequency)
	}
}

// TestOpensAreBounded starts cold gets of six containers with a limit of two opens: at most two
// opens ever run at once, and all six complete.
func TestOpensAreBounded(t *testing.T) {
	var mu sync.Mutex
	inFlight, peak := 0, 0
	release := make(chan struct{})
	twoRunning := make(chan struct{}, 8)
	open := func(_ context.Context, key string) (*container, error) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		twoRunning <- struct{}{}
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		return &container{key: key, cost: 1}, nil
	}
	c := newIndexCache(context.Background(), 1<<20, time.Minute, 2, open)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			if _, _, err := c.get(context.Background(), fmt.Sprint("k", i)); err != nil {
				t.Error(err)
			}
		})
	}
	<-twoRunning
	<-twoRunning
	// Give a third open every chance to start if the bound were broken.
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	if peak != 2 {
		t.Errorf("%d opens ran at once, want 2", peak)
	}
	mu.Unlock()
	close(release)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if peak > 2 {
		t.Errorf("%d opens ran at once, want at most 2", peak)
	}
	if st := c.snapshot(); st.Opens != 6 || st.Entries != 6 {
		t.Errorf("stats %+v: want 6 opens, 6 entries", st)
	}
}

// TestColdResidentLosesItsPlace: a container asked for often and then never again is displaced by a
// newly popular one within about one frequency window, not after as many requests as it once had.
func TestColdResidentLosesItsPlace(t *testing.T) {
	opens := map[string]int{}
	open := func(_ context.Context, key string) (*container, error) {
		opens[key]++ // gets run one at a time here
		return &container{key: key, cost: 10}, nil
	}
	c := newIndexCache(context.Background(), 10, time.Minute, 1, open) // room for one container
	for range 5000 {
		if _, _, err := c.get(context.Background(), "old"); err != nil {
			t.Fatal(err)
		}
	}
	reopens := 0
	for reopens = 0; reopens < 10*frequencyWindow; reopens++ {
		if _, hit, err := c.get(context.Background(), "new"); err != nil {
			t.Fatal(err)
		} else if hit {
			break
		}
	}
	if reopens > frequencyWindow+maxFrequency+1 {
		t.Errorf("the new container was opened %d times before it was kept, want ≤ %d", reopens, frequencyWindow+maxFrequency+1)
	}
	if st := c.snapshot(); st.Entries != 1 || c.peek("new") == nil || opens["old"] != 1 {
		t.Errorf("stats %+v, opens %v: want only the new container cached, the old one opened once", st, opens)
	}
}
