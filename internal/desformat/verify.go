package desformat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// maxReportedProblems caps VerifyReport.Problems; Count keeps the total.
const maxReportedProblems = 100

// VerifyReport summarises Reader.Verify.
type VerifyReport struct {
	Entries         int  // index entries checked, duplicates included
	Names           int  // distinct names
	Duplicates      int  // entries shadowed by a later entry of the same name
	IndexChecksum   bool // footer carries an index CRC-32C (verified at open)
	Checksummed     int  // payloads whose CRC-32C matched
	Unchecksummed   int  // payloads without a checksum (v1): length checked only
	External        int  // external payloads
	ExternalSkipped int  // external payloads not checked: no external store
	ProblemCount    int
	Problems        []error // the first maxReportedProblems problems
}

func (v *VerifyReport) problem(err error) {
	v.ProblemCount++
	if len(v.Problems) < maxReportedProblems {
		v.Problems = append(v.Problems, err)
	}
}

// Err returns nil for a clean archive, else the reported problems joined.
func (v *VerifyReport) Err() error {
	if v.ProblemCount == 0 {
		return nil
	}
	return errors.Join(v.Problems...)
}

// Verify checks what opening does not: the header, every meta object,
// and every payload's length and checksum (external ones through the
// store when configured). Problems are collected, not fatal; the returned
// error is non-nil only for I/O failures or cancellation.
func (r *Reader) Verify(ctx context.Context) (*VerifyReport, error) {
	return r.VerifyProgress(ctx, nil)
}

// VerifyProgress is Verify calling checked (when not nil) after each index entry, so a caller can
// show how far it got; checked runs on the calling goroutine.
func (r *Reader) VerifyProgress(ctx context.Context, checked func(Entry)) (*VerifyReport, error) {
	v := &VerifyReport{
		Entries:       r.idx.len(),
		Names:         r.idx.unique,
		Duplicates:    r.idx.len() - r.idx.unique,
		IndexChecksum: r.footer.HasIndexChecksum(),
	}
	r.verifyHeader(v)
	buf := make([]byte, 256<<10)
	for i := range r.idx.len() {
		if err := ctx.Err(); err != nil {
			return v, err
		}
		e := r.idx.entryAt(i)
		r.verifyEntry(ctx, &e, v, buf)
		if checked != nil {
			checked(e)
		}
	}
	return v, nil
}

func (r *Reader) verifyHeader(v *VerifyReport) {
	var h [HeaderSize]byte
	if err := readFull(r.ra, h[:], 0); err != nil {
		v.problem(fmt.Errorf("desformat: read header: %w", err))
		return
	}
	switch {
	case string(h[:8]) != HeaderMagic:
		v.problem(&CorruptError{Region: RegionHeader, Err: ErrBadMagic, Reason: fmt.Sprintf("magic %q, want %q", h[:8], HeaderMagic)})
	case h[8] != Version:
		v.problem(&CorruptError{Region: RegionHeader, Err: ErrUnsupportedVersion, Reason: fmt.Sprintf("version %d", h[8])})
	}
}

func (r *Reader) verifyEntry(ctx context.Context, e *Entry, v *VerifyReport, buf []byte) {
	if err := checkReadable(e); err != nil {
		v.problem(err)
		return
	}
	raw, err := r.metaBytes(e)
	if err != nil {
		v.problem(err)
		return
	}
	mi, err := parseMetaInfo(raw, r.footer.HasPayloadChecksums())
	if err == nil {
		err = checkMetaConsistency(e, mi)
	}
	if err != nil {
		v.problem(corrupt(RegionMeta, "%q: %v", e.Name, err))
		return
	}
	if e.IsExternal() {
		v.External++
		if r.ext == nil {
			v.ExternalSkipped++
			return
		}
	}
	f, err := r.openWithMeta(ctx, e, mi)
	if err != nil {
		v.problem(err)
		return
	}
	defer f.Close()
	if _, err := io.CopyBuffer(io.Discard, onlyReader{f}, buf); err != nil {
		v.problem(err)
		return
	}
	if f.Verified() {
		v.Checksummed++
	} else {
		v.Unchecksummed++
	}
}

// onlyReader hides File's fields from io.CopyBuffer's interface checks.
type onlyReader struct{ io.Reader }

// checkMetaConsistency compares the writer-owned meta keys with the index.
func checkMetaConsistency(e *Entry, mi metaInfo) error {
	if t := bytes.TrimSpace(mi.size); len(t) > 0 {
		var n json.Number
		if json.Unmarshal(t, &n) != nil || n.String() != strconv.FormatInt(e.Size, 10) {
			return fmt.Errorf("meta size %s, index says %d", t, e.Size)
		}
	}
	isExt := string(bytes.TrimSpace(mi.isExternal)) == "true"
	if isExt != e.IsExternal() && len(mi.isExternal) > 0 {
		return fmt.Errorf("meta is_external %s, index flags %#x", mi.isExternal, uint32(e.Flags))
	}
	return nil
}
