// Package client is the Go client of the two HTTP services of DES: the reader sidecar (`manager
// reader`, docs/reader.md), which serves files out of DES containers in object storage, and the name
// service (`manager assign`), which hands out unique DES names.
//
// The reader client never trusts the transport: every whole file it returns, and every file of a
// batch, is checked against the CRC-32C the sidecar sends with it (and against its announced length)
// before a read reports success, so a cut connection or damaged bytes surface as an error rather than
// as a short or wrong file. A batch is consumed as a stream (Reader.Batch returns an iter.Seq2), so
// neither side holds the whole batch in memory.
//
// Errors are typed: StatusError for any answer other than success (with the HTTP status and the
// server's message), ChecksumError for bytes that do not match their CRC-32C, and the sentinels
// ErrNotFound, ErrChecksum, ErrIncomplete, ErrRangeNotSatisfiable and ErrProtocol (an answer that
// does not follow the wire format) for errors.Is. ErrNotFound and
// ErrChecksum are the very values of package des, so one errors.Is matches a failure whether the file
// was read from archive bytes with package des or through the sidecar with this package.
//
// Clients hold no global state: each is built from a base URL and the *http.Client to use (nil: a
// client of its own with net/http's default transport), and every call takes a context.
//
// The request and header types in wire.go are the wire contract itself: the servers in
// internal/reader and internal/assign use them too, so the two sides cannot drift apart.
package client
