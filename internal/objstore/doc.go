// Package objstore is DES's object-storage layer over aws-sdk-go-v2: a configured S3 client that works
// with AWS S3, HCP and MinIO-like servers, reads that cost as few requests as possible, parallel range
// execution, a bounded-memory multipart writer, and helpers for external "_bigFiles/" payloads.
//
// # Reading
//
// [Store.OpenReaderAt] opens an object with ONE request: a suffix range GET (Range: bytes=-N) returns the
// last N bytes and, in Content-Range, the object's size, so no HEAD is needed. The returned
// [ObjectReader] is an io.ReaderAt that keeps those bytes, so a format reader that asks for the same
// tail again costs nothing. Every other ReadAt is one Range GET, pinned with If-Match to the ETag seen at
// open so that bytes of two versions of an object can never be mixed. A zero-length read sends nothing:
// "bytes=N-(N-1)" is invalid and some stores answer it with the whole object.
//
// # Writing
//
// [Store.NewUploader] streams an object of unknown size with memory bounded by
// PartSize × (Concurrency+1). An object that fits one part goes up in a single PUT; a larger one becomes a
// multipart upload whose ID is reported (OnUploadID) before the first part is sent, so that a crash can be
// recovered with [Store.AbortMultipart] or [Store.CompleteMultipart]. Any failure aborts the upload.
//
// # Server behaviour checked against versitygw v1.8.0 (the test world)
//
//   - Suffix ranges: "bytes=-N" gives 206 with "Content-Range: bytes S-E/SIZE"; on an object smaller than N,
//     206 "bytes 0-(SIZE-1)/SIZE"; on an empty object, 200 with no Content-Range and an empty body (AWS
//     answers 416 there instead). All three are handled, plus stores that ignore or misread the suffix.
//   - "bytes=5-4" (an empty range) is answered with 200 and the WHOLE object: never send it.
//   - A range starting past the end gives 416 InvalidRange ([ErrInvalidRange]).
//   - If-Match on GET is honoured (412 when the ETag differs).
//   - If-None-Match: * is honoured with 412 on PutObject AND on CompleteMultipartUpload when the key exists;
//     after a 412 on complete the upload is still listed, so the writer aborts it.
//   - HEAD of a missing key: 404 "NotFound"; GET: "NoSuchKey"; a second abort: 404 "NoSuchUpload".
//   - ListMultipartUploads pages are broken: the server drops the key-marker's own uploads before looking
//     for upload-id-marker among them, so it answers 400 InvalidArgument to every marker pair it hands
//     out. The lister detects that, lists the marker's key by name, and continues with key-marker alone.
//     (Only matters beyond 1000 unfinished uploads under one prefix.)
//
// Errors are wrapped in [*Error] and match the sentinels [ErrNotFound], [ErrNoSuchBucket], [ErrExists],
// [ErrChanged] and [ErrInvalidRange] with errors.Is, while errors.As still reaches the SDK's error.
package objstore
