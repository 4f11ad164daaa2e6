package main

import (
	"context"
	"io"

	"github.com/datavision/des/internal/packer"
)

// runPack packs shards into containers; it is what packer Jobs run (docs/protocol.md, "What the packer
// does"). The flags and the work live in internal/packer, so its tests run the very same command.
func runPack(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return packer.Command(ctx, args, stdout, stderr)
}
