package reader

import (
	"context"
	"sync"
)

// flightGroup collapses concurrent calls for one key into one execution (singleflight). The function
// runs in its own goroutine on a context detached from every caller: a caller that gives up (its
// request was cancelled) returns at once, while the others keep waiting and the result still lands
// in whatever cache fn fills.
type flightGroup[V any] struct {
	mu    sync.Mutex
	calls map[string]*flightCall[V]
}

type flightCall[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// do runs fn(base) for key unless a run is already in flight, then waits for the result or ctx.
// started reports whether this call started the run.
func (g *flightGroup[V]) do(ctx, base context.Context, key string, fn func(context.Context) (V, error)) (v V, started bool, err error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = make(map[string]*flightCall[V])
	}
	c, ok := g.calls[key]
	if !ok {
		c = &flightCall[V]{done: make(chan struct{})}
		g.calls[key] = c
		go g.run(base, key, c, fn)
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.val, !ok, c.err
	case <-ctx.Done():
		return v, !ok, context.Cause(ctx)
	}
}

func (g *flightGroup[V]) run(base context.Context, key string, c *flightCall[V], fn func(context.Context) (V, error)) {
	c.val, c.err = fn(base)
	g.mu.Lock()
	delete(g.calls, key)
	g.mu.Unlock()
	close(c.done)
}
