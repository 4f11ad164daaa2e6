package objstore

import (
	"context"
	"sync"
)

// DefaultFetchConcurrency is FetchRanges' number of requests in flight when none is given.
const DefaultFetchConcurrency = 8

// FetchRanges reads ranges of r's object with at most concurrency requests in flight and hands each one
// to fn, IN THE ORDER OF ranges, from the calling goroutine (fn is never called concurrently). data
// belongs to fn. Ranges are fetched ahead of delivery, but a range's buffer counts against concurrency
// until fn returns, so memory stays within concurrency × the largest range.
//
// Ranges are validated first: one outside the object fails with ErrInvalidRange before any request.
// Empty ranges and ranges inside the cached tail cost no request. The first error (a failed fetch or one
// returned by fn) cancels the fetches still running and is returned; fn is not called after it.
//
// Each range is one GET: stores ignore multi-range requests, so coalescing belongs to the planner.
func FetchRanges(ctx context.Context, r *ObjectReader, ranges []Range, concurrency int, fn func(i int, data []byte) error) error {
	for _, rng := range ranges {
		if err := r.checkRange(rng); err != nil {
			return err
		}
	}
	if concurrency <= 0 {
		concurrency = DefaultFetchConcurrency
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := &fetcher{
		r:       r.WithContext(ctx),
		ranges:  ranges,
		slots:   make(chan struct{}, concurrency),
		results: make([]chan fetched, len(ranges)),
	}
	for i := range f.results {
		f.results[i] = make(chan fetched, 1)
	}
	f.wg.Add(1)
	go f.launch(ctx)
	err := f.deliver(ctx, fn)
	cancel()
	f.wg.Wait()
	return err
}

type fetched struct {
	data []byte
	err  error
}

type fetcher struct {
	r       *ObjectReader
	ranges  []Range
	slots   chan struct{} // one per range fetched but not yet delivered
	results []chan fetched
	wg      sync.WaitGroup
}

// launch starts fetches in order as slots free up.
func (f *fetcher) launch(ctx context.Context) {
	defer f.wg.Done()
	for i := range f.ranges {
		select {
		case f.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		f.wg.Add(1)
		go f.fetch(i)
	}
}

func (f *fetcher) fetch(i int) {
	defer f.wg.Done()
	data := make([]byte, f.ranges[i].Len)
	err := f.r.fill(data, f.ranges[i].Off)
	f.results[i] <- fetched{data: data, err: err}
}

// deliver waits for each range in order, calls fn, and frees the range's slot.
func (f *fetcher) deliver(ctx context.Context, fn func(int, []byte) error) error {
	for i := range f.ranges {
		var res fetched
		select {
		case res = <-f.results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if res.err != nil {
			return res.err
		}
		if err := fn(i, res.data); err != nil {
			return err
		}
		<-f.slots
	}
	return nil
}
