package devstack

import (
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

func createBucket(name string) *s3.CreateBucketInput { return &s3.CreateBucketInput{Bucket: &name} }

func alreadyOwned(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode() == "BucketAlreadyOwnedByYou" || apiErr.ErrorCode() == "BucketAlreadyExists")
}

func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }
