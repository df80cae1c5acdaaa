package pipeline

import (
	"context"
	"path/filepath"

	"github.com/bakeimg/bake/source"
)

// stepFetchSource downloads or locates the base disk or ISO and verifies
// its checksum.
type stepFetchSource struct{}

func (*stepFetchSource) Name() string { return "source" }

func (*stepFetchSource) Run(ctx context.Context, s *State) error {
	src := s.Recipe.Source
	locations := src.ISO
	if src.DiskImage != "" {
		locations = []string{src.DiskImage}
	}
	f := source.Fetcher{CacheDir: filepath.Join(s.Options.Home, "cache"), Emitter: s.Emitter}
	res, err := f.Fetch(ctx, locations, src.Checksum)
	if err != nil {
		return err
	}
	s.Source.Path, s.Source.Digest, s.Source.Location = res.Path, res.Digest, res.Location
	s.Emitter.Infof("source %s (%s)", res.Location, res.Digest)
	return nil
}

func (*stepFetchSource) Cleanup(*State) error { return nil }
