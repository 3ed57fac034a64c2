package ingest

import (
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

// layout maps media's output paths to keys under one attempt's prefix.
// Every output keeps its path: a premium rendition is premium because the
// catalog says so (its premium flag, which steering signs into each token),
// never because of where it is stored. A key marker such as the edge's
// legacy "/premium/" would make the POP refuse a rendition the catalog has
// since made free.
type layout struct {
	prefix string
}

func (l layout) key(file string) string { return l.prefix + file }

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
	l := layout{prefix: prefix}
	sizes := map[string]int64{}
	var mu sync.Mutex
	files := make(chan string)
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for file := range files {
				n, err := f.put(ctx, l, outDir, file)
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
func (f *Function) put(ctx context.Context, l layout, outDir, file string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(outDir, filepath.FromSlash(file)))
	if err != nil {
		return 0, fmt.Errorf("%s: read output %s: %w", Name, file, err)
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
