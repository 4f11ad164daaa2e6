package reader

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/datavision/des/internal/catalog"
	"github.com/datavision/des/internal/desformat"
)

// Locator answers where packed files are: the DesSource's catalog (catalog.Catalog.Locate), which
// records each file's container, offset, length and CRC-32C when it commits.
type Locator interface {
	Locate(ctx context.Context, names []string) (map[string]catalog.FileLocation, error)
}

// How a file was found, as the X-Des-Found-By header and the lookups metric say.
const (
	// foundByCatalog: the catalog gave the file's exact placement; no index was read.
	foundByCatalog = "catalog"
	// foundByIndex: the container was known (from the catalog or the request) and its index read.
	foundByIndex = "index"
	// foundBySearch: the name's day and shard led to candidate containers, searched one by one.
	foundBySearch = "search"
)

var (
	// errNotPacked: the catalog has no packed row of that name (unknown, or not committed yet).
	errNotPacked = errors.New("the catalog has no packed file of that name")
	// errOtherBucket: the catalog places the file in a bucket this reader does not serve.
	errOtherBucket = errors.New("the file's container is in a bucket this reader does not serve")
)

// find locates one file: through the catalog when there is one and it answers, otherwise by
// searching the containers of the name's shard from its day on.
func (s *Server) find(ctx context.Context, name string) (fileInfo, error) {
	if s.cfg.Catalog != nil {
		locs, err := s.catalogLocations(ctx, []string{name})
		if err == nil {
			fl, ok := locs[name]
			if !ok {
				return fileInfo{}, fmt.Errorf("%w: %q", errNotPacked, name)
			}
			return s.fromCatalog(ctx, fl)
		}
		if ctx.Err() != nil {
			return fileInfo{}, ctx.Err()
		}
	}
	ct, err := s.locate(ctx, name)
	if err != nil {
		return fileInfo{}, err
	}
	fi, err := ct.stat(name)
	fi.foundBy = foundBySearch
	s.metrics.lookups.WithLabelValues(foundBySearch).Inc()
	return fi, err
}

// fromCatalog turns the catalog's answer into what serving needs: the placement itself, or, for a row
// packed before placements were recorded, the entry in the container the catalog names (one index
// read, never a search).
func (s *Server) fromCatalog(ctx context.Context, fl catalog.FileLocation) (fileInfo, error) {
	if err := s.checkLocation(fl); err != nil {
		return fileInfo{}, err
	}
	if !fl.Placed {
		ct, err := s.containerFor(ctx, fl.Key)
		if err != nil {
			return fileInfo{}, err
		}
		fi, err := ct.stat(fl.Name)
		fi.foundBy = foundByIndex
		s.metrics.lookups.WithLabelValues(foundByIndex).Inc()
		return fi, err
	}
	s.metrics.lookups.WithLabelValues(foundByCatalog).Inc()
	return s.placedInfo(ctx, fl), nil
}

// checkLocation allows only containers this reader may read: its bucket, under its prefixes.
func (s *Server) checkLocation(fl catalog.FileLocation) error {
	if fl.Bucket != s.cfg.Bucket {
		return fmt.Errorf("%w: %q is in s3://%s/%s, this reader serves bucket %q",
			errOtherBucket, fl.Name, fl.Bucket, fl.Key, s.cfg.Bucket)
	}
	return s.cfg.checkKey(fl.Key)
}

// placedInfo describes a file from its placement alone. The content type is not in the catalog (the
// packer records none), so it is the default.
func (s *Server) placedInfo(ctx context.Context, fl catalog.FileLocation) fileInfo {
	fi := fileInfo{
		Entry:       desformat.Entry{Name: fl.Name, DataOffset: fl.Offset, Size: fl.Size},
		CRC:         fl.CRC32C,
		HasCRC:      fl.HasCRC,
		ContentType: defaultContentType,
		ExternalKey: fl.ExternalKey,
		Key:         fl.Key,
		obj:         s.cfg.Store.NewObjectReader(ctx, s.cfg.Bucket, fl.Key, fl.ObjectSize, ""),
		foundBy:     foundByCatalog,
	}
	if fl.IsExternal() {
		fi.Flags = desformat.FlagExternal
	}
	return fi
}

// lookup asks the catalog, within CatalogTimeout. A failure is counted and logged (at most once per
// fallbackLogEvery): the caller then falls back to searching the archive, which still verifies every
// payload, so an unreachable catalog costs requests, never correctness.
func (s *Server) lookup(ctx context.Context, names []string) (map[string]catalog.FileLocation, error) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CatalogTimeout)
	defer cancel()
	locs, err := s.cfg.Catalog.Locate(cctx, names)
	if err == nil {
		s.keepPlacements(locs)
		return locs, nil
	}
	if ctx.Err() != nil {
		return nil, err
	}
	s.metrics.catalogFallbacks.Inc()
	s.fallbackLog.log(func(suppressed int) {
		s.log.Error(err, "catalog lookup failed: finding files by searching the archive instead",
			"names", len(names), "similarFailuresNotLogged", suppressed)
	})
	return nil, err
}

// keepPlacements remembers the placed files of a catalog answer. Only placements are kept: they never
// change once committed. A row packed before placements existed is looked up again each time (its
// container's index is cached anyway).
func (s *Server) keepPlacements(locs map[string]catalog.FileLocation) {
	expires := s.now().Add(s.cfg.PlacementTTL)
	for name, fl := range locs {
		if fl.Placed {
			s.placements.put(name, fl, expires)
		}
	}
}

// catalogLocations answers where the packed files among names are: from the placements kept from
// earlier answers, and with one catalog lookup (lookup) for the rest. Names absent from the result are
// not packed; an error is the catalog's, for the caller to fall back.
func (s *Server) catalogLocations(ctx context.Context, names []string) (map[string]catalog.FileLocation, error) {
	known := map[string]catalog.FileLocation{}
	var ask []string
	now := s.now()
	for _, name := range names {
		if fl, ok := s.placements.get(name, now); ok {
			known[name] = fl
			continue
		}
		ask = append(ask, name)
	}
	s.metrics.placementHits.Add(float64(len(known)))
	if len(ask) == 0 {
		return known, nil
	}
	found, err := s.lookup(ctx, ask)
	if err != nil {
		return nil, err
	}
	maps.Copy(known, found)
	return known, nil
}

// fallbackLogEvery spaces out the log line of catalog fallbacks: during an outage every request
// falls back, and one line per request would bury everything else.
const fallbackLogEvery = 10 * time.Second

// rateLog runs a log function at most once per interval, telling it how many calls it skipped.
type rateLog struct {
	every time.Duration
	mu    sync.Mutex
	last  time.Time
	skip  int
}

func (l *rateLog) log(f func(suppressed int)) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.skip++
		l.mu.Unlock()
		return
	}
	skipped := l.skip
	l.last, l.skip = now, 0
	l.mu.Unlock()
	f(skipped)
}
