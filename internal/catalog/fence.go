package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Fences make the catalog the arbiter of which containers may still change rows. Every container that
// claims a row gets a row in des_container_fences, in one of three states; a claim, a mark-failed and
// a commit succeed only while the container is open, and a roll-back closes it in the same
// transaction that returns its rows. So a writer that outlived its Lease (frozen, partitioned, its
// clock off) and still believes it owns C changes nothing once C was rolled back: the invariant
// "rows claimed by C exist only while C is open" holds whatever the writer does.
const (
	fenceOpen      = "open"
	fenceClosed    = "closed" // rolled back
	fenceCommitted = "committed"
)

// ErrContainerClosed means the container was rolled back (or committed) before a claim or a
// mark-failed: nothing was changed and the writer must stop using it.
var ErrContainerClosed = errors.New("container is closed: it was rolled back or committed")

func (c *Catalog) fenceTableStatement() string {
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
			container text PRIMARY KEY,
			state text NOT NULL CHECK (state IN (%s, %s, %s)),
			changed_at timestamptz NOT NULL DEFAULT now())`,
		c.m.fencesIdent(), literal(fenceOpen), literal(fenceClosed), literal(fenceCommitted))
}

// lockFence opens container's fence if it has none yet and returns its state, locked in mode ("SHARE"
// for a claim or a mark-failed, which may run beside each other; "UPDATE" for a commit) until tx ends.
// inserted says whether this call created the fence. A roll-back's close takes the row lock, so it
// waits for a claim in flight and then sees the rows that claim took.
func (c *Catalog) lockFence(ctx context.Context, tx pgx.Tx, container, mode string) (state string, inserted bool, err error) {
	t := c.m.fencesIdent()
	tag, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (container, state) VALUES ($1, $2) ON CONFLICT (container) DO NOTHING`, t),
		container, fenceOpen)
	if err != nil {
		return "", false, fmt.Errorf("open fence of %s: %w", container, err)
	}
	err = tx.QueryRow(ctx, fmt.Sprintf(`SELECT state FROM %s WHERE container = $1 FOR %s`, t, mode), container).Scan(&state)
	if err != nil {
		return "", false, fmt.Errorf("lock fence of %s: %w", container, err)
	}
	return state, tag.RowsAffected() == 1, nil
}

// dropFence removes a fence this transaction created for a claim that took nothing, so that packing
// runs over empty shards leave no rows behind. A later claim opens it again; a roll-back that ran
// before inserts it closed, which a later claim then finds.
func (c *Catalog) dropFence(ctx context.Context, tx pgx.Tx, container string) error {
	_, err := tx.Exec(ctx, fmt.Sprintf(`DELETE FROM %s WHERE container = $1 AND state = $2`, c.m.fencesIdent()), container, fenceOpen)
	if err != nil {
		return fmt.Errorf("drop fence of %s: %w", container, err)
	}
	return nil
}

// closeFence closes container's fence (creating it closed if it has none), unless it is committed.
func (c *Catalog) closeFence(ctx context.Context, tx pgx.Tx, container string) error {
	_, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %[1]s AS f (container, state) VALUES ($1, $2)
		ON CONFLICT (container) DO UPDATE SET state = $2, changed_at = now() WHERE f.state = $3`, c.m.fencesIdent()),
		container, fenceClosed, fenceOpen)
	if err != nil {
		return fmt.Errorf("close fence of %s: %w", container, err)
	}
	return nil
}

func (c *Catalog) setFence(ctx context.Context, tx pgx.Tx, container, state string) error {
	_, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET state = $2, changed_at = now() WHERE container = $1`, c.m.fencesIdent()), container, state)
	if err != nil {
		return fmt.Errorf("set fence of %s to %s: %w", container, state, err)
	}
	return nil
}

// IsOpen reports whether container may still claim rows: it was neither rolled back nor committed.
func (c *Catalog) IsOpen(ctx context.Context, container string) (bool, error) {
	var state string
	err := c.pool.QueryRow(ctx, fmt.Sprintf(`SELECT state FROM %s WHERE container = $1`, c.m.fencesIdent()), container).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up fence of %s: %w", container, err)
	}
	return state == fenceOpen, nil
}
