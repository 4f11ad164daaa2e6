package objstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/datavision/des/internal/objstore"
	"github.com/datavision/des/test/objstoretest"
)

func TestFetchRanges(t *testing.T) {
	base, bucket := newStore(t)
	data := randomBytes(200_000, 11)
	put(t, base, bucket, "k", data)
	const hint = 1000
	size := int64(len(data))

	ranges := []objstore.Range{
		{Off: 0, Len: 10},
		{Off: 5, Len: 100_000},        // overlaps the previous one
		{Off: 150_000, Len: 0},        // empty: no request
		{Off: size - 500, Len: 500},   // inside the tail: no request
		{Off: size - 1500, Len: 1000}, // half in the tail: fetches 500 bytes
		{Off: 77_777, Len: 1},
		{Off: size, Len: 0},
	}
	for _, concurrency := range []int{1, 3, 0} {
		s, f := faulty(base)
		r, _, err := s.OpenReaderAt(context.Background(), bucket, "k", hint)
		if err != nil {
			t.Fatal(err)
		}
		var order []int
		err = objstore.FetchRanges(context.Background(), r, ranges, concurrency, func(i int, got []byte) error {
			order = append(order, i)
			assertSame(t, got, data[ranges[i].Off:ranges[i].End()])
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range order {
			if i != v {
				t.Fatalf("concurrency %d: delivered in order %v", concurrency, order)
			}
		}
		if len(order) != len(ranges) {
			t.Fatalf("delivered %d of %d", len(order), len(ranges))
		}
		// open + 4 ranges that need the store
		if got := r.Stats(); got.Requests != 5 || got.Bytes != hint+10+100_000+500+1 {
			t.Fatalf("concurrency %d: stats %+v", concurrency, got)
		}
		if f.Calls("GetObject") != 5 {
			t.Fatalf("concurrency %d: %d GetObject calls", concurrency, f.Calls("GetObject"))
		}
	}
}

func TestFetchRangesBoundsConcurrency(t *testing.T) {
	base, bucket := newStore(t)
	data := randomBytes(64<<10, 12)
	put(t, base, bucket, "k", data)
	ranges := make([]objstore.Range, 20)
	for i := range ranges {
		ranges[i] = objstore.Range{Off: int64(i) * 3000, Len: 2000}
	}
	for _, concurrency := range []int{1, 3, 8} {
		s, f := faulty(base)
		r := s.NewObjectReader(context.Background(), bucket, "k", int64(len(data)), "")
		// A slow server makes every request overlap with the ones the bound allows.
		f.Add(objstoretest.Rule{Op: "GetObject", Delay: 30 * time.Millisecond})
		delivered := 0
		err := objstore.FetchRanges(context.Background(), r, ranges, concurrency, func(i int, got []byte) error {
			delivered++
			assertSame(t, got, data[ranges[i].Off:ranges[i].End()])
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := f.MaxInFlight("GetObject"); got != concurrency {
			t.Fatalf("concurrency %d: %d requests in flight at most", concurrency, got)
		}
		if delivered != len(ranges) || r.Stats().Requests != int64(len(ranges)) {
			t.Fatalf("delivered %d, stats %+v", delivered, r.Stats())
		}
	}
}

func TestFetchRangesStopsOnFirstError(t *testing.T) {
	base, bucket := newStore(t)
	data := randomBytes(100_000, 13)
	put(t, base, bucket, "k", data)
	ranges := make([]objstore.Range, 50)
	for i := range ranges {
		ranges[i] = objstore.Range{Off: int64(i) * 1000, Len: 1000}
	}
	injected := errors.New("injected")
	stop := errors.New("stop")

	tests := []struct {
		name    string
		rules   []objstoretest.Rule
		fnErrAt int // -1: fn never fails
		want    error
		calls   int // fn calls: every range before the failing one, in order, and none after
	}{
		// The third range, not the third call: four fetches run at once and reach the store in no
		// fixed order.
		{"fetch fails", []objstoretest.Rule{{Op: "GetObject", Range: "bytes=2000-2999", Err: injected}}, -1, injected, 2},
		{"fn fails", nil, 4, stop, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, f := faulty(base)
			f.Add(tc.rules...)
			f.Add(objstoretest.Rule{Op: "GetObject", Delay: 5 * time.Millisecond})
			r := s.NewObjectReader(context.Background(), bucket, "k", int64(len(data)), "")
			calls := 0
			err := objstore.FetchRanges(context.Background(), r, ranges, 4, func(i int, _ []byte) error {
				if i != calls {
					t.Errorf("fn got range %d, want %d: not in order", i, calls)
				}
				calls++
				if i == tc.fnErrAt {
					return stop
				}
				return nil
			})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if calls != tc.calls {
				t.Fatalf("fn called %d times, want %d", calls, tc.calls)
			}
			// Cancelled: far fewer requests than ranges were sent.
			if n := f.Calls("GetObject"); n > tc.calls+5 {
				t.Fatalf("%d requests sent after the failure", n)
			}
		})
	}
}

func TestFetchRangesRejectsBadRangesWithoutRequests(t *testing.T) {
	s, bucket := newStore(t)
	put(t, s, bucket, "k", randomBytes(100, 1))
	r := s.NewObjectReader(context.Background(), bucket, "k", 100, "")
	for _, rng := range []objstore.Range{{Off: 90, Len: 11}, {Off: -1, Len: 1}, {Off: 0, Len: -1}, {Off: 101, Len: 0}} {
		err := objstore.FetchRanges(context.Background(), r, []objstore.Range{{Off: 0, Len: 1}, rng}, 2,
			func(int, []byte) error { t.Fatal("fn called"); return nil })
		if !errors.Is(err, objstore.ErrInvalidRange) {
			t.Fatalf("%+v: got %v", rng, err)
		}
	}
	if r.Stats().Requests != 0 || s.Stats().Gets != 0 {
		t.Fatalf("requests sent: %+v", r.Stats())
	}
}
