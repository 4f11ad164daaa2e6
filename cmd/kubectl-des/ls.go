package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/objstore"
)

// runLs lists the names in a container from its index, read from the archive store (not the
// catalog: ls shows what the object holds).
func runLs(e *env, args []string) int {
	fs := commandFlags(e, "ls", "[-l] CONTAINER")
	long := fs.Bool("l", false, "long listing: size, offset in the object, flags (ext: stored beside it), CRC-32C, name")
	pos, code, ok := parseArgs(e, fs, args, 1, 1)
	if !ok {
		return code
	}
	if err := listContainer(e, pos[0], *long); err != nil {
		return fail(e, "ls", fmt.Errorf("%s: %w", pos[0], err))
	}
	return exitOK
}

func listContainer(e *env, name string, long bool) error {
	con, ds, err := containerAndShard(e, name)
	if err != nil {
		return err
	}
	store, err := archiveStore(e, ds)
	if err != nil {
		return err
	}
	r, err := openIndex(e, store, con)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(e.stdout)
	if long {
		err = listLong(e, bw, r)
	} else {
		for _, en := range r.Entries() {
			fmt.Fprintln(bw, en.Name)
		}
	}
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write the listing: %w", err)
	}
	return nil
}

// openIndex opens the container's object for reading by name: footer and index (its checksum
// verified), external payloads from the same bucket.
func openIndex(e *env, store *objstore.Store, con *desv1.DesContainer) (*desformat.Reader, error) {
	bucket, key := con.Spec.Bucket, con.Spec.Key
	ra, _, err := store.OpenReaderAt(e.ctx, bucket, key, desformat.DefaultTailSize)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, act(errNoObject, fmt.Errorf("no object at s3://%s/%s", bucket, key),
			"the container is %s: %s", con.Status.Phase.OrPending(), phaseAdvice(con.Status.Phase))
	}
	if err != nil {
		return nil, storeTrouble(err, bucket, key)
	}
	r, err := desformat.NewReader(ra, ra.Size(), desformat.ReaderOptions{External: store.Blobs(bucket, objstore.UploadOptions{})})
	if err != nil {
		return nil, act(errDamaged, fmt.Errorf("open s3://%s/%s: %w", bucket, key, err), "run kubectl des verify %s for a full report", con.Name)
	}
	return r, nil
}

// phaseAdvice says why a container of phase p may have no object.
func phaseAdvice(p desv1.ContainerPhase) string {
	switch p {
	case desv1.PhaseRolledBack, desv1.PhaseFailed:
		return "its object was deleted and its files went back to ready"
	case desv1.PhaseCommitted, desv1.PhaseUploaded:
		return "its object should be there: run kubectl des verify on it"
	}
	return "its object is still being written; try again once it is Uploaded or Committed"
}

// listLong prints size, offset, flags, checksum and name of every file, as `des ls -l` does plus
// the offset in the object (what a ranged read of the file asks for; "-" for payloads stored beside
// it or empty). It reads the meta region once.
func listLong(e *env, w io.Writer, r *desformat.Reader) error {
	locs, err := r.Locations(e.ctx)
	if err != nil {
		return act(errDamaged, fmt.Errorf("read the placements: %w", err), "run kubectl des verify for a full report")
	}
	for _, l := range locs {
		sum, flags, off := "-", "-", "-"
		if l.HasCRC {
			sum = fmt.Sprintf("%08x", l.CRC32C)
		}
		switch {
		case l.IsExternal():
			flags = "ext"
		case l.Size > 0:
			off = fmt.Sprint(l.Offset)
		}
		fmt.Fprintf(w, "%12d  %12s  %-3s  %-8s  %s\n", l.Size, off, flags, sum, l.Name)
	}
	return nil
}
