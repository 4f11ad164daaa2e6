package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
)

// Claim sweep bounds. A writer claims rows only after its DesContainer exists, and recovery returns
// the rows of a container before its finalizer goes, so rows claimed by a container that is final or
// gone should not exist. They can if a person removes a finalizer by hand, or after a bug; the sweep
// returns them so that they are packed, instead of staying claimed for ever. Claims younger than the
// grace are not looked at: they belong to running packers, and asking about each would cost a read.
const (
	claimSweepGrace = 10 * time.Minute
	claimSweepBatch = 100
)

// strayClaim says why the rows claimed by container go back, or "" if they stay (its writer may
// still be working on it).
func strayClaim(c *desv1.DesContainer) string {
	switch {
	case c == nil:
		return "no DesContainer of that name exists"
	case c.Status.Phase.IsFinal():
		return fmt.Sprintf("the DesContainer is %s", c.Status.Phase)
	}
	return ""
}

// returnStrayClaims finds old claims of the source's catalog and returns those of containers that are
// final or gone (RollBack, which also closes the container: a writer still around can claim nothing
// more for it). Containers are read around the cache: a container the cache has not seen yet must not
// count as gone.
func (r *DesSourceReconciler) returnStrayClaims(ctx context.Context, src *desv1.DesSource, cat *catalog.Catalog) error {
	holders, err := cat.ClaimHolders(ctx, r.Clock.Now().Add(-claimSweepGrace), claimSweepBatch)
	if err != nil {
		return err
	}
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	for _, name := range holders {
		c := &desv1.DesContainer{}
		err := reader.Get(ctx, client.ObjectKey{Namespace: src.Namespace, Name: name}, c)
		switch {
		case apierrors.IsNotFound(err):
			c = nil
		case err != nil:
			return fmt.Errorf("look up DesContainer %s holding claimed rows: %w", name, err)
		}
		why := strayClaim(c)
		if why == "" {
			continue
		}
		n, err := cat.RollBack(ctx, name)
		if err != nil {
			return err
		}
		log.FromContext(ctx).Info("returned stray claims to ready", "container", name, "rows", n, "why", why)
		r.Recorder.Eventf(src, nil, corev1.EventTypeWarning, string(desv1.ReasonStrayClaimsReturned), "ReturnClaims",
			"%d rows claimed by container %s went back to ready: %s", n, name, why)
	}
	return nil
}
