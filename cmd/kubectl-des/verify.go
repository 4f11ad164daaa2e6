package main

import (
	"errors"
	"fmt"
	"io"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/containercheck"
	"github.com/datavision/des/internal/desformat"
	"github.com/datavision/des/internal/progress"
	"github.com/datavision/des/internal/protocol"
)

// runVerify reads a container back and checks it through containercheck, the checks crash recovery
// makes before it rolls a container forward, and then what recovery does not read: every payload,
// and, for a committed container, every catalog row against the file it places.
func runVerify(e *env, args []string) int {
	fs := commandFlags(e, "verify", "[--skip-catalog] [-q] CONTAINER")
	skipCatalog := fs.Bool("skip-catalog", false, "check the archive only, without comparing it with the catalog")
	quiet := fs.Bool("q", false, "no progress bar (there is none unless stderr is a terminal)")
	pos, code, ok := parseArgs(e, fs, args, 1, 1)
	if !ok {
		return code
	}
	v := &verification{e: e, out: e.stdout, quiet: *quiet}
	if err := v.run(pos[0], *skipCatalog); err != nil {
		return fail(e, "verify", fmt.Errorf("%s: %w", pos[0], err))
	}
	return exitOK
}

// verification is one run of verify: what it printed and what it found.
type verification struct {
	e        *env
	out      io.Writer
	findings []error // the container is not as recorded
	quiet    bool    // no progress bar
}

// maxListed bounds the problems printed per check; the count says how many there were.
const maxListed = 20

func (v *verification) run(name string, skipCatalog bool) error {
	con, ds, err := containerAndShard(v.e, name)
	if err != nil {
		return err
	}
	if err := verifiable(con); err != nil {
		return err
	}
	fmt.Fprintf(v.out, "DesContainer %s (%s): s3://%s/%s\n", con.Name, con.Status.Phase, con.Spec.Bucket, con.Spec.Key)
	if err := ownLocation(con, ds); err != nil {
		v.report("archive", err)
		return v.verdict(nil)
	}
	store, err := archiveStore(v.e, ds)
	if err != nil {
		return err
	}
	rec := containercheck.Recorded{IndexChecksum: con.Status.IndexChecksum, PayloadChecksum: con.Status.PayloadChecksum}
	obj, err := containercheck.Open(v.e.ctx, store, con.Spec.Bucket, con.Spec.Key, rec)
	if _, isFinding := containercheck.AsProblem(err); isFinding {
		v.report("archive", err)
		return v.verdict(nil)
	}
	if err != nil {
		return storeTrouble(err, con.Spec.Bucket, con.Spec.Key)
	}
	v.checkObject(con, obj)
	if err := v.checkPayloads(obj); err != nil {
		return storeTrouble(err, con.Spec.Bucket, con.Spec.Key)
	}
	if skipCatalog {
		fmt.Fprintln(v.out, "catalog:  NOT CHECKED (--skip-catalog)")
		return v.verdict(nil)
	}
	return v.verdict(v.checkCatalog(con, ds, obj))
}

// verifiable refuses containers that have no object to read: still being written, or rolled back.
func verifiable(con *desv1.DesContainer) error {
	switch p := con.Status.Phase; p {
	case desv1.PhaseUploaded, desv1.PhaseCommitted:
		return nil
	case desv1.PhaseRolledBack, desv1.PhaseFailed:
		return act(errNoObject, fmt.Errorf("DesContainer %s is %s (%s)", con.Name, p, con.Status.Reason),
			"there is nothing to verify: its files went back to ready and are packed into another container")
	default:
		return act(errNoObject, fmt.Errorf("DesContainer %s is %s: its object is still being written", con.Name, p.OrPending()),
			"verify it once it is Uploaded or Committed (kubectl get descontainer %s -w)", con.Name)
	}
}

// ownLocation is recovery's rule: a container's object is in its DesShard's archive bucket, at the
// key the protocol gives its name. Anything else is not what DES wrote there, whatever it holds.
func ownLocation(con *desv1.DesContainer, ds *desv1.DesShard) error {
	err := protocol.CheckContainerBucket(ds.Spec.Archive.Bucket, con.Spec.Bucket)
	if err == nil {
		err = protocol.CheckContainerKey(ds.Spec.Archive.Prefix, ds.Name, con.Spec.Day, con.Spec.Shard, con.Name, con.Spec.Key)
	}
	if err != nil {
		return fmt.Errorf("the DesContainer does not name its DesShard's archive location: %w", err)
	}
	return nil
}

// checkObject prints what opening found and compares the counts the writer recorded.
func (v *verification) checkObject(con *desv1.DesContainer, obj *containercheck.Object) {
	s := obj.Summary
	st := con.Status
	if st.Files != 0 && (st.Files != s.Files || st.Bytes != s.PayloadBytes || st.ObjectSize != s.Size) {
		v.report("archive", fmt.Errorf("the object holds %s, %d payload bytes in %d bytes; the DesContainer records %d, %d, %d",
			plural(s.Files, "file"), s.PayloadBytes, s.Size, st.Files, st.Bytes, st.ObjectSize))
		return
	}
	recorded := "as the DesContainer records them"
	if st.IndexChecksum == "" {
		recorded = "(the DesContainer records none)"
	}
	fmt.Fprintf(v.out, "archive:  OK  %d-byte object, %s, %d payload bytes; index %s and payload %s checksums %s\n",
		s.Size, plural(s.Files, "file"), s.PayloadBytes, s.IndexChecksum(), s.PayloadChecksum(), recorded)
}

// checkPayloads reads every payload back. Its error is a failure to read, not a finding.
func (v *verification) checkPayloads(obj *containercheck.Object) error {
	var total int64
	for _, e := range obj.Reader.IndexEntries() {
		total += e.Size
	}
	bar := progress.New(v.e.stderr, v.quiet, "kubectl des verify", obj.Reader.NumIndexEntries(), total)
	rep, err := obj.VerifyPayloads(v.e.ctx, func(e desformat.Entry) { bar.Add(1, e.Size) })
	bar.Finish() // before the verdict lines
	if _, isFinding := containercheck.AsProblem(err); isFinding {
		v.report("payloads", err, rep.Problems...)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(v.out, "payloads: OK  %d CRC-32C checksums verified (%d external), %d without checksum\n",
		rep.Checksummed, rep.External, rep.Unchecksummed)
	return nil
}

// checkCatalog compares the catalog with the object: a committed container's rows and placements,
// or an uploaded one's claimed rows (recovery's roll-forward check). Its error is a failure to ask.
func (v *verification) checkCatalog(con *desv1.DesContainer, ds *desv1.DesShard, obj *containercheck.Object) error {
	src := &desv1.DesSource{}
	if err := get(v.e, "dessources", ds.Spec.SourceRef, src); err != nil {
		return v.notChecked(err)
	}
	cat, closeCat, err := openCatalog(v.e, src, "pass --skip-catalog to check the archive alone")
	if err != nil {
		return v.notChecked(err)
	}
	defer closeCat()
	committed, err := cat.IsCommitted(v.e.ctx, con.Name)
	if err != nil {
		return v.notChecked(act(errCatalog, err, "check the catalog database of DesSource %s", src.Name))
	}
	switch {
	case committed:
		return v.compareRows(cat, src, con, obj)
	case con.Status.Phase == desv1.PhaseCommitted:
		v.report("catalog", fmt.Errorf("the DesContainer is Committed, but the catalog's des_containers has no record of %s", con.Name))
		return nil
	}
	claimed, err := cat.ClaimedIDs(v.e.ctx, con.Name)
	if err != nil {
		return v.notChecked(act(errCatalog, err, "check the catalog database of DesSource %s", src.Name))
	}
	if _, err := obj.PlaceClaimed(v.e.ctx, claimed); err != nil {
		return v.finding("catalog", err)
	}
	fmt.Fprintf(v.out, "catalog:  OK  not committed yet: its %s claimed by the container are exactly the object's files\n", plural(int64(len(claimed)), "row"))
	return nil
}

// rowPage is how many rows one catalog query returns.
const rowPage = 5000

func (v *verification) compareRows(cat *catalog.Catalog, src *desv1.DesSource, con *desv1.DesContainer, obj *containercheck.Object) error {
	var rows []catalog.ContainerRow
	for after := int64(0); ; {
		page, err := cat.ContainerRows(v.e.ctx, con.Name, after, rowPage)
		if err != nil {
			return v.notChecked(act(errCatalog, err, "check the catalog database of DesSource %s", src.Name))
		}
		rows = append(rows, page...)
		if len(page) < rowPage {
			break
		}
		after = page[len(page)-1].ID
	}
	rep, err := obj.CompareRows(v.e.ctx, rows)
	if err != nil {
		return v.finding("catalog", err)
	}
	if err := rep.Err(); err != nil {
		v.report("catalog", err, rep.Problems...)
		return nil
	}
	unplaced := ""
	if rep.Unplaced > 0 {
		unplaced = fmt.Sprintf(" (%d packed before placements were recorded: matched by name)", rep.Unplaced)
	}
	fmt.Fprintf(v.out, "catalog:  OK  %s of DesSource %s match the object's files and placements%s\n",
		plural(int64(rep.Matched), "row"), src.Name, unplaced)
	return nil
}

// finding reports a containercheck error: a finding is reported, anything else is a failure to look.
func (v *verification) finding(check string, err error) error {
	if _, isFinding := containercheck.AsProblem(err); isFinding {
		v.report(check, err)
		return nil
	}
	return v.notChecked(err)
}

// notChecked prints why the catalog was not compared and returns it: verify fails without the
// catalog's word, unless --skip-catalog said not to ask.
func (v *verification) notChecked(err error) error {
	fmt.Fprintf(v.out, "catalog:  NOT CHECKED  %v\n", err)
	return err
}

// report prints a failed check with its first problems and records the finding.
func (v *verification) report(check string, finding error, problems ...error) {
	v.findings = append(v.findings, finding)
	fmt.Fprintf(v.out, "%-9s FAILED  %v\n", check+":", finding)
	for i, p := range problems {
		if i == maxListed {
			fmt.Fprintf(v.out, "          ... and %d more\n", len(problems)-maxListed)
			break
		}
		fmt.Fprintf(v.out, "          - %v\n", p)
	}
}

// verdict prints the outcome and returns the error verify exits with: the findings, and the reason the
// catalog was not checked (unreached).
func (v *verification) verdict(unreached error) error {
	if len(v.findings) == 0 && unreached == nil {
		fmt.Fprintln(v.out, "verdict:  OK")
		return nil
	}
	fmt.Fprintln(v.out, "verdict:  FAILED")
	var errs []error
	if len(v.findings) > 0 {
		errs = append(errs, act(errMismatch, fmt.Errorf("%w: %w", errMismatch, errors.Join(v.findings...)),
			"the problems are listed above; keep the source objects of this container's files until they are resolved"))
	}
	if unreached != nil {
		errs = append(errs, unreached)
	}
	return errors.Join(errs...)
}
