package des

import (
	"time"

	"github.com/datavision/des/internal/naming"
)

// Name types, aliases of internal/naming's: a Name is PREFIX_YYYYMMDD_(FFFFFFFFFFFF_CC)[.ext], where
// F is [low 32 bits of Unix ms][node id][sequence] and CC a checksum of F.
type (
	// Name is a decoded DES name; String formats it.
	Name = naming.Name
	// Day is a UTC calendar day, the YYYYMMDD of a name.
	Day = naming.Day
	// NameConfig configures NewGenerator.
	NameConfig = naming.Config
	// Generator issues unique names for one node id; it is safe for concurrent use.
	Generator = naming.Generator
	// NameParseError says why a name is malformed; it wraps ErrMalformedName.
	NameParseError = naming.ParseError
	// NameChecksumError is a well-formed name whose CC does not match; it wraps ErrNameChecksum.
	NameChecksumError = naming.ChecksumError
)

// Naming limits.
const (
	DefaultNamePrefix = naming.DefaultPrefix
	MaxPrefixLen      = naming.MaxPrefixLen
	MinShardBits      = naming.MinShardBits
	MaxShardBits      = naming.MaxShardBits
)

// Naming errors. They differ from the archive errors above: ErrNameChecksum is about a name's CC,
// ErrChecksum about a payload's bytes.
var (
	ErrMalformedName = naming.ErrMalformed
	ErrNameChecksum  = naming.ErrChecksum
	ErrShardBits     = naming.ErrShardBits
)

// NewGenerator returns a generator for cfg.Node. Names are unique only while no other generator uses
// the same node id; the name service (see package client) hands out names under a Lease for that.
func NewGenerator(cfg NameConfig) (*Generator, error) { return naming.NewGenerator(cfg) }

// ParseName decodes s and checks its checksum.
func ParseName(s string) (Name, error) { return naming.Parse(s) }

// ParseDay parses YYYYMMDD.
func ParseDay(s string) (Day, error) { return naming.ParseDay(s) }

// DayOf returns the UTC day of t.
func DayOf(t time.Time) Day { return naming.DayOf(t) }

// Shard returns the shard of name for a width of bits (MinShardBits..MaxShardBits): the top bits of
// SHA-256 of the name as given, extension included, as DES v1 computed it.
func Shard(name string, bits int) (uint32, error) { return naming.Shard(name, bits) }
