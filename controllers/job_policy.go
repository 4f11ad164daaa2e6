package controllers

import (
	"fmt"
	"slices"

	desv1 "github.com/datavision/des/api/v1alpha1"
)

// The flags that widen what a DesShard may choose for its packer pods (cmd/manager names them here
// too, so the refusal a person reads names the flag that exists).
const (
	FlagAllowedPackerImages          = "allowed-packer-images"
	FlagAllowedPackerServiceAccounts = "allowed-packer-service-accounts"
)

// jobSettingsNotAllowed is a DesShard's choice of packer image or ServiceAccount that the manager's
// configuration does not allow.
type jobSettingsNotAllowed struct {
	field, value, def, flag string
}

func (e *jobSettingsNotAllowed) Error() string {
	return fmt.Sprintf("%s %q is not allowed: packers run with the controller's default (%q) or a value listed in its --%s flag",
		e.field, e.value, e.def, e.flag)
}

// allows says whether the packer pods of ds may run with the image and ServiceAccount its spec.job
// asks for. Anyone who may edit a DesShard would otherwise run any image as any ServiceAccount of
// the namespace, with the archive's and the catalog's Secrets mounted; so only the controller's
// defaults (--packer-image, --packer-service-account) and the values its allow-lists name are
// taken. Images are compared as whole strings: a tag can be moved to other content, so list
// digests (image@sha256:…) where that matters.
func (d JobDefaults) allows(ds *desv1.DesShard) error {
	job := ds.Spec.Job
	if v := job.Image; v != "" && v != d.Image && !slices.Contains(d.AllowedImages, v) {
		return &jobSettingsNotAllowed{"spec.job.image", v, d.Image, FlagAllowedPackerImages}
	}
	if v := job.ServiceAccountName; v != "" && v != d.ServiceAccountName && !slices.Contains(d.AllowedServiceAccounts, v) {
		return &jobSettingsNotAllowed{"spec.job.serviceAccountName", v, d.ServiceAccountName, FlagAllowedPackerServiceAccounts}
	}
	return nil
}

// checkJobSettings is allows as the DesShard's Ready problem: no Job is created until the spec or
// the controller's configuration changes.
func (r *DesShardReconciler) checkJobSettings(ds *desv1.DesShard) *notReady {
	if err := r.Jobs.allows(ds); err != nil {
		return &notReady{desv1.ReasonJobSettingsNotAllowed, err.Error()}
	}
	return nil
}
