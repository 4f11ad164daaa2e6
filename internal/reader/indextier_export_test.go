package reader

// Test access to the tier's envelope, so tests can craft entries that pass the checksum but lie.
type TierEntry = tierEntry

var EncodeTierEntry = encodeTierEntry

func DecodeTierEntry(v []byte, bucket, key string, maxEntry int64) (TierEntry, error) {
	return decodeTierEntry(v, bucket, key, maxEntry)
}
