package client

// BatchRequest is the body of the reader's POST /v1/batch.
type BatchRequest struct {
	// Container is the key of the container holding every name; empty: the sidecar finds each
	// name's container from its day and shard, as GET /v1/files/{name} does.
	Container string   `json:"container,omitempty"`
	Names     []string `json:"names"`
}

// Headers of the reader's responses and of the parts of a batch response (see docs/reader.md).
const (
	HeaderName      = "X-Des-Name"      // batch part: the file name, URL path-escaped
	HeaderStatus    = "X-Des-Status"    // batch part: 200, or 404 for a name found nowhere (empty part)
	HeaderContainer = "X-Des-Container" // key of the container the bytes came from
	HeaderChecksum  = "X-Des-Checksum"  // crc32c=<8 hex digits>, when the archive records one
	HeaderFiles     = "X-Des-Files"     // batch response: parts with a file
	HeaderMissing   = "X-Des-Missing"   // batch response: parts for names not found
)

// checksumPrefix starts the value of HeaderChecksum.
const checksumPrefix = "crc32c="

// NamesRequest is the body of the name service's POST /v1/names. Nil fields take the service's
// defaults.
type NamesRequest struct {
	Count     int     `json:"count"`
	Prefix    *string `json:"prefix,omitempty"`
	Day       *string `json:"day,omitempty"` // YYYYMMDD
	ShardBits *int    `json:"shardBits,omitempty"`
}

// NamesResponse is the body of a successful POST /v1/names.
type NamesResponse struct {
	Names []AssignedName `json:"names"`
}

// AssignedName is one issued name and its shard.
type AssignedName struct {
	Name  string `json:"name"`
	Shard uint32 `json:"shard"`
}

// errorBody is the JSON body of an error answer: the reader sends both fields, the name service only
// "error".
type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status,omitempty"`
}
