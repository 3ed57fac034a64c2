package ingest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/overture-music/overture/internal/catalog"
	"github.com/overture-music/overture/internal/media"
)

// PremiumDir is the key segment the edge and steering treat as premium
// (their PremiumMarker "premium/"): premium renditions are stored under it.
const PremiumDir = "premium/"

// layout maps media's output paths to keys under one attempt's prefix:
// premium renditions' directories move under premium/, everything else
// keeps its path.
type layout struct {
	prefix  string
	premium []string // top-level directories of premium renditions, "aac256/"
}

func newLayout(prefix string, res *media.Result) layout {
	l := layout{prefix: prefix}
	for _, r := range res.Renditions {
		if !r.Premium {
			continue
		}
		p := r.Playlist
		if p == "" {
			p = r.File
		}
		if dir, _, ok := strings.Cut(p, "/"); ok {
			l.premium = append(l.premium, dir+"/")
		}
	}
	return l
}

// rel is where file (relative to the output directory) goes, relative to
// the prefix.
func (l layout) rel(file string) string {
	for _, d := range l.premium {
		if strings.HasPrefix(file, d) {
			return PremiumDir + file
		}
	}
	return file
}

func (l layout) key(file string) string { return l.prefix + l.rel(file) }

// master rewrites the master playlist's variant URIs for the layout.
func (l layout) master(b []byte) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line != "" && !strings.HasPrefix(line, "#") {
			line = l.rel(line)
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

var contentTypes = map[string]string{
	".m3u8": "application/vnd.apple.mpegurl",
	".m4s":  "video/iso.segment",
	".mp4":  "audio/mp4",
	".flac": "audio/flac",
	".json": "application/json",
	".jpg":  "image/jpeg",
	".png":  "image/png",
}

// rendition kinds in the catalog for media's kinds.
func catalogKind(kind string) string {
	if n, ok := strings.CutPrefix(kind, "aac"); ok {
		return "hls-aac-" + n
	}
	return kind
}

// upload puts every output under prefix and describes the renditions for
// the catalog.
func (f *Function) upload(ctx context.Context, res *media.Result, outDir, prefix string) (catalog.Audio, error) {
	l := newLayout(prefix, res)
	sizes := map[string]int64{}
	var mu sync.Mutex
	files := make(chan string)
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for file := range files {
				n, err := f.put(ctx, l, outDir, file, file == res.Master)
				if err != nil {
					errc <- err
					for range files {
					}
					return
				}
				mu.Lock()
				sizes[file] = n
				mu.Unlock()
			}
		})
	}
	for _, file := range res.Files {
		files <- file
	}
	close(files)
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return catalog.Audio{}, err
	}
	a := catalog.Audio{PeaksKey: l.key(res.Peaks)}
	if res.Master != "" {
		var codecs []string
		for _, r := range res.Renditions {
			if r.Playlist != "" && !contains(codecs, r.Codec) {
				codecs = append(codecs, r.Codec)
			}
		}
		a.Renditions = append(a.Renditions, catalog.AudioRendition{Kind: "hls", StorageKey: l.key(res.Master), Codec: strings.Join(codecs, ",")})
	}
	for _, r := range res.Renditions {
		file := r.Playlist
		if file == "" {
			file = r.File
		}
		a.Renditions = append(a.Renditions, catalog.AudioRendition{Kind: catalogKind(r.Kind), StorageKey: l.key(file),
			Codec: r.Codec, Bitrate: r.Bitrate, Premium: r.Premium, Bytes: sizes[file]})
	}
	largest := 0
	for _, c := range res.Covers {
		if c.Size > largest {
			largest, a.CoverKey = c.Size, l.key(c.File)
		}
	}
	return a, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// put uploads one output file.
func (f *Function) put(ctx context.Context, l layout, outDir, file string, master bool) (int64, error) {
	b, err := os.ReadFile(filepath.Join(outDir, filepath.FromSlash(file)))
	if err != nil {
		return 0, fmt.Errorf("%s: read output %s: %w", Name, file, err)
	}
	if master {
		b = l.master(b)
	}
	in := &s3.PutObjectInput{Bucket: aws.String(f.cfg.MediaBucket), Key: aws.String(l.key(file)), Body: bytes.NewReader(b),
		ContentLength: aws.Int64(int64(len(b)))}
	if ct, ok := contentTypes[path.Ext(file)]; ok {
		in.ContentType = aws.String(ct)
	}
	if _, err := f.S3.PutObject(ctx, in); err != nil {
		return 0, fmt.Errorf("%s: upload %s: %w", Name, l.key(file), err)
	}
	return int64(len(b)), nil
}

// deletePrefix removes every object under prefix in the media bucket.
func (f *Function) deletePrefix(ctx context.Context, prefix string) error {
	p := s3.NewListObjectsV2Paginator(f.S3, &s3.ListObjectsV2Input{Bucket: aws.String(f.cfg.MediaBucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("%s: list %s: %w", Name, prefix, err)
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, 0, len(page.Contents))
		for _, o := range page.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		for _, id := range ids {
			// One DeleteObject each: DeleteObjects needs a Content-MD5 the
			// SDK no longer sends by default, and these are few.
			if _, err := f.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(f.cfg.MediaBucket), Key: id.Key}); err != nil && !isNotFound(err) {
				return fmt.Errorf("%s: delete %s: %w", Name, aws.ToString(id.Key), err)
			}
		}
	}
	return nil
}
