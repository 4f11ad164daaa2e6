package catalog

import "context"

// Statement is one statement DES sent, as the database received it.
type Statement struct {
	Text string
	Args []any
}

type traceKey struct{}

// WithTrace returns a context under which every statement this package sends is first passed to fn.
// The scale run uses it to EXPLAIN exactly the statements each operation sends, so a plan that scans
// a whole catalog table on a hot path is caught by a test, not by a user's database.
func WithTrace(ctx context.Context, fn func(Statement)) context.Context {
	return context.WithValue(ctx, traceKey{}, fn)
}

// trace reports a statement to the context's tracer, if any.
func trace(ctx context.Context, text string, args []any) {
	if fn, ok := ctx.Value(traceKey{}).(func(Statement)); ok {
		fn(Statement{Text: text, Args: args})
	}
}
