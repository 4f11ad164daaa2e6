package naming

import (
	"crypto/sha256"
	"errors"
	"fmt"
)

// Shard widths accepted by Shard. The v1 vectors pin widths 1, 4, 8, 12 and 16; 16 bits (65,536 shards)
// is the most any DES deployment uses, and a uint32 result leaves room without changing the API.
const (
	MinShardBits = 1
	MaxShardBits = 16
)

// ErrShardBits is wrapped by the error Shard returns for a width outside MinShardBits..MaxShardBits.
var ErrShardBits = errors.New("naming: shard bits out of range")

// Shard returns the top bits bits of SHA-256 of the name's bytes, i.e. a shard id in [0, 2^bits). The name is
// hashed as given (extension included) and need not be a valid DES name: v1 sharded every stored name this
// way, so existing names must keep hashing to the same shard.
func Shard(name string, bits int) (uint32, error) {
	if bits < MinShardBits || bits > MaxShardBits {
		return 0, fmt.Errorf("%w: %d (want %d..%d)", ErrShardBits, bits, MinShardBits, MaxShardBits)
	}
	sum := sha256.Sum256([]byte(name))
	top := uint32(sum[0])<<24 | uint32(sum[1])<<16 | uint32(sum[2])<<8 | uint32(sum[3])
	return top >> uint(32-bits), nil
}
