package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// lockFence returns container's fence state, opening the fence if it has none yet, locked until tx
// ends: shared for a claim or a mark-failed (which may run beside each other), exclusive for a commit.
// inserted says whether this call created the fence. A roll-back's close takes the row lock, so it
// waits for a claim in flight and then sees the rows that claim took.
func (c *Catalog) lockFence(ctx context.Context, tx *sql.Tx, container string, exclusive bool) (state string, inserted bool, err error) {
	lock := c.db.d.lockShare()
	if exclusive {
		lock = "FOR UPDATE"
	}
	sel := c.q("")
	sel.add(`SELECT state FROM %s WHERE container = %s %s`, c.fences(), sel.arg(container), lock)
	err = queryRow(ctx, tx, sel, &state)
	if !errors.Is(err, sql.ErrNoRows) {
		if err != nil {
			return "", false, fmt.Errorf("lock fence of %s: %w", container, err)
		}
		return state, false, nil
	}
	// No fence yet: open it, unless a concurrent claim or roll-back just made one, then lock that.
	ins := c.q("")
	ins.add("%s", c.db.d.insertIgnoring(fmt.Sprintf(`INSERT INTO %s (container, state, changed_at) VALUES (%s, %s, %s)`,
		c.fences(), ins.arg(container), ins.arg(fenceOpen), c.db.d.now())))
	n, err := exec(ctx, tx, ins)
	if err != nil && !c.db.d.ignoredErr(err) {
		return "", false, fmt.Errorf("open fence of %s: %w", container, err)
	}
	inserted = err == nil && n == 1
	if err := queryRow(ctx, tx, sel, &state); err != nil {
		return "", false, fmt.Errorf("lock fence of %s: %w", container, err)
	}
	return state, inserted, nil
}

// dropFence removes a fence this transaction created for a claim that took nothing, so that packing
// runs over empty shards leave no rows behind. A later claim opens it again; a roll-back that ran
// before inserts it closed, which a later claim then finds.
func (c *Catalog) dropFence(ctx context.Context, tx *sql.Tx, container string) error {
	q := c.q("")
	q.add(`DELETE FROM %s WHERE container = %s AND state = %s`, c.fences(), q.arg(container), q.arg(fenceOpen))
	if _, err := exec(ctx, tx, q); err != nil {
		return fmt.Errorf("drop fence of %s: %w", container, err)
	}
	return nil
}

// closeFence closes container's fence (creating it closed if it has none), unless it is committed.
// It is one statement (an upsert), so a claim cannot open the fence between a look and a write.
func (c *Catalog) closeFence(ctx context.Context, tx *sql.Tx, container string) error {
	q := c.db.d.upsertState(c.q(""), c.fences(), container, fenceClosed, fenceOpen)
	if _, err := exec(ctx, tx, q); err != nil {
		return fmt.Errorf("close fence of %s: %w", container, err)
	}
	return nil
}

func (c *Catalog) setFence(ctx context.Context, tx *sql.Tx, container, state string) error {
	q := c.q("")
	q.add(`UPDATE %s SET state = %s, changed_at = %s WHERE container = %s`, c.fences(), q.arg(state), c.db.d.now(), q.arg(container))
	if _, err := exec(ctx, tx, q); err != nil {
		return fmt.Errorf("set fence of %s to %s: %w", container, state, err)
	}
	return nil
}

// IsOpen reports whether container may still claim rows: it was neither rolled back nor committed.
func (c *Catalog) IsOpen(ctx context.Context, container string) (bool, error) {
	q := c.q("")
	q.add(`SELECT state FROM %s WHERE container = %s`, c.fences(), q.arg(container))
	var state string
	err := queryRow(ctx, c.db.sql, q, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up fence of %s: %w", container, err)
	}
	return state == fenceOpen, nil
}
