package objstore

// SetMultipartPageSize makes ListMultipartUploads ask for pages of n uploads; call the result to undo.
func SetMultipartPageSize(n int32) func() {
	old := multipartPageSize
	multipartPageSize = n
	return func() { multipartPageSize = old }
}
