package main

import (
	"bytes"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/datavision/des/internal/desformat"
)

// TestVerify: verify passes a container as the packer committed it and fails, naming the problem,
// for every way its object or its catalog rows can differ from what was committed.
func TestVerify(t *testing.T) {
	for _, tc := range []struct {
		name     string
		commit   bool
		args     []string
		damage   func(w *world)
		code     int
		inStdout []string
		inStderr []string
	}{
		{name: "committed and intact", commit: true, code: exitOK, inStdout: []string{
			"(Committed)", "archive:  OK", "6 files", "as the DesContainer records them",
			"payloads: OK  6 CRC-32C checksums verified (1 external)", "catalog:  OK  6 rows of DesSource src match", "verdict:  OK"}},
		{name: "uploaded, not committed yet", code: exitOK, inStdout: []string{
			"(Uploaded)", "catalog:  OK  not committed yet: its 6 rows claimed by the container are exactly the object's files", "verdict:  OK"}},
		{name: "flag after the name", commit: true, args: []string{"--skip-catalog"}, code: exitOK,
			inStdout: []string{"payloads: OK", "catalog:  NOT CHECKED (--skip-catalog)", "verdict:  OK"}},
		{name: "a payload byte flipped", commit: true, damage: func(w *world) {
			b := bytes.Clone(w.object)
			b[w.location("N_2").Offset+7] ^= 0x01
			w.put(b)
		}, code: exitError, inStdout: []string{"archive:  OK", "payloads: FAILED", `"N_2"`, "checksum mismatch", "verdict:  FAILED"},
			inStderr: []string{"verification failed", "keep the source objects"}},
		{name: "object truncated", commit: true, damage: func(w *world) { w.put(w.object[:len(w.object)-100]) },
			code: exitError, inStdout: []string{"archive:  FAILED  the object does not verify", "verdict:  FAILED"}},
		{name: "object missing", commit: true, damage: func(w *world) {
			if err := w.store.Delete(w.ctx, w.bucket, w.con.Spec.Key); err != nil {
				w.t.Fatal(err)
			}
		}, code: exitError, inStdout: []string{"archive:  FAILED  no object at its key"}},
		{name: "another archive of the same names at the key", commit: true, damage: func(w *world) { w.put(w.sameNames('x')) },
			code: exitError, inStdout: []string{"archive:  FAILED  the object's checksums", "differ from the recorded"}},
		{name: "a catalog row's offset is wrong", commit: true, damage: func(w *world) {
			w.db.Exec(w.t, `UPDATE objects SET des_offset = des_offset + 1 WHERE des_name = 'N_3'`)
		}, code: exitError, inStdout: []string{"payloads: OK", "catalog:  FAILED", `"N_3"`, "the catalog places it at offset"},
			inStderr: []string{"verification failed"}},
		{name: "a catalog row's size is wrong", commit: true, damage: func(w *world) {
			w.db.Exec(w.t, `UPDATE objects SET des_length = des_length - 1 WHERE des_name = 'N_big'`)
		}, code: exitError, inStdout: []string{"catalog:  FAILED", `"N_big"`, "external"}},
		{name: "a row moved to another container", commit: true, damage: func(w *world) {
			w.db.Exec(w.t, `UPDATE objects SET des_container = 'other' WHERE des_name = 'N_1'`)
		}, code: exitError, inStdout: []string{"catalog:  FAILED", `"N_1": in the object, but the catalog records no row of it packed in this container`}},
		{name: "catalog unreachable", commit: true, damage: func(w *world) {
			w.setDSN("postgres://des@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
		}, code: exitError, inStdout: []string{"archive:  OK", "payloads: OK", "catalog:  NOT CHECKED", "verdict:  FAILED"},
			inStderr: []string{"reach the catalog database", "pass --skip-catalog to check the archive alone"}},
		{name: "catalog unreachable, skipped", commit: true, args: []string{"--skip-catalog"}, damage: func(w *world) {
			w.setDSN("postgres://des@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
		}, code: exitOK, inStdout: []string{"catalog:  NOT CHECKED (--skip-catalog)", "verdict:  OK"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.commit)
			if tc.damage != nil {
				tc.damage(w)
			}
			args := append([]string{"verify", w.con.Name}, tc.args...)
			r := w.run(args...)
			expect(t, r, tc.code, tc.inStdout, tc.inStderr)
			if tc.code != exitOK && r.stderr == "" {
				t.Errorf("a failure without a message: %v", r)
			}
		})
	}
}

// sameNames is an archive of the world's names and sizes, every byte fill: a container's name with
// other contents.
func (w *world) sameNames(fill byte) []byte {
	w.t.Helper()
	var buf bytes.Buffer
	dw, err := desformat.NewWriter(&buf, desformat.WriterOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, l := range w.locations() {
		data := bytes.Repeat([]byte{fill}, int(l.Size))
		if err := dw.Add(w.ctx, desformat.FileHeader{Name: l.Name, Size: l.Size}, bytes.NewReader(data)); err != nil {
			w.t.Fatal(err)
		}
	}
	if err := dw.Close(); err != nil {
		w.t.Fatal(err)
	}
	return buf.Bytes()
}

// setDSN points the DesSource's catalog Secret at another database.
func (w *world) setDSN(dsn string) {
	w.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "catalog", Namespace: w.ns}}
	if err := w.kube.Get(w.ctx, client.ObjectKeyFromObject(s), s); err != nil {
		w.t.Fatal(err)
	}
	s.Data = map[string][]byte{"dsn": []byte(dsn)}
	if err := w.kube.Update(w.ctx, s); err != nil {
		w.t.Fatal(err)
	}
}

// TestVerifyRefusesWhatItCannotCheck: usage errors, unknown containers and containers without an
// object say so and what to do.
func TestVerifyRefusesWhatItCannotCheck(t *testing.T) {
	w := newWorld(t, true)
	expect(t, w.run("verify"), exitUsage, nil, []string{"usage: kubectl des verify"})
	expect(t, w.run("verify", "nope"), exitError, nil,
		[]string{`descontainers "nope" not found in namespace ` + w.ns, "kubectl get descontainers -n " + w.ns})
	w.con.Status.Phase = "Writing"
	if err := w.kube.Status().Update(w.ctx, w.con); err != nil {
		t.Fatal(err)
	}
	expect(t, w.run("verify", w.con.Name), exitError, nil,
		[]string{"is Writing: its object is still being written", "verify it once it is Uploaded or Committed"})
}
