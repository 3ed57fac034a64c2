package edge

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
)

// sliceKey names one cached slice of an object.
type sliceKey struct {
	key string
	idx int64
}

// sliceOverhead approximates the bookkeeping bytes per memory entry, so the
// memory budget is honest for small objects too.
const sliceOverhead = 96

// store is the two cache tiers plus what is known about each object.
type store struct {
	mem   *otter.Cache[sliceKey, []byte]
	disk  *diskTier // nil without a disk tier
	slice int64
	tagRe func(string) string

	mu   sync.RWMutex
	meta map[string]objectInfo
	tags map[string]map[string]struct{}
	// purges counts purges per key, so a fetch that started before a purge
	// does not store the old bytes after it.
	purges map[string]uint64
}

func newStore(c Config) (*store, error) {
	mem, err := otter.New(&otter.Options[sliceKey, []byte]{
		MaximumWeight: uint64(c.MemoryBytes),
		Weigher:       func(_ sliceKey, v []byte) uint32 { return uint32(len(v)) + sliceOverhead },
	})
	if err != nil {
		return nil, fmt.Errorf("edge: memory tier: %w", err)
	}
	re := c.TagPattern
	s := &store{mem: mem, slice: c.SliceSize, meta: map[string]objectInfo{}, tags: map[string]map[string]struct{}{}, purges: map[string]uint64{},
		tagRe: func(k string) string {
			if m := re.FindStringSubmatch(k); len(m) > 1 {
				return m[1]
			}
			return ""
		}}
	if c.DiskDir != "" {
		if s.disk, err = openDisk(c.DiskDir, c.DiskBytes); err != nil {
			return nil, err
		}
		for _, info := range s.disk.loadMeta() {
			s.addMetaLocked(info)
		}
	}
	return s, nil
}

func (s *store) slices(size int64) int64 {
	if size <= 0 {
		return 1
	}
	return (size + s.slice - 1) / s.slice
}

func (s *store) info(key string) (objectInfo, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.meta[key]
	return i, ok
}

func (s *store) addMetaLocked(info objectInfo) {
	info.prepare()
	s.meta[info.Key] = info
	if info.Tag != "" {
		set := s.tags[info.Tag]
		if set == nil {
			set = map[string]struct{}{}
			s.tags[info.Tag] = set
		}
		set[info.Key] = struct{}{}
	}
}

// putMeta records info (tagging it) in memory and on disk.
func (s *store) putMeta(info objectInfo) {
	if info.Tag == "" {
		info.Tag = s.tagRe(info.Key)
	}
	s.mu.Lock()
	s.addMetaLocked(info)
	s.mu.Unlock()
	if s.disk != nil {
		s.disk.putMeta(info)
	}
}

// touchMeta marks a revalidated object fresh again.
func (s *store) touchMeta(key string, at time.Time) {
	s.mu.Lock()
	if i, ok := s.meta[key]; ok {
		i.Fetched = at
		s.meta[key] = i
	}
	s.mu.Unlock()
}

// inMemory says which slices the memory tier holds. With a disk tier only
// playlists: small, hot, read whole and rewritten per request. Media slices
// stay in their disk-tier files and reach listeners from the kernel's page
// cache (sendfile), so the POP's heap does not grow with what it caches;
// nginx keeps its cache the same way. Without a disk tier, everything.
func (s *store) inMemory(key string) bool {
	return s.disk == nil || isPlaylist(key)
}

// get returns a slice from memory, else read from disk (promoted to memory
// only when it belongs there, see inMemory).
func (s *store) get(k sliceKey) ([]byte, tier) {
	if b, ok := s.mem.GetIfPresent(k); ok {
		return b, tierMemory
	}
	if s.disk != nil {
		if b, ok := s.disk.get(k); ok {
			if s.inMemory(k.key) {
				s.mem.Set(k, b)
			}
			return b, tierDisk
		}
	}
	return nil, tierNone
}

// has reports presence without reading (cheap; used under the flight lock).
func (s *store) has(k sliceKey) bool {
	if _, ok := s.mem.GetIfPresent(k); ok {
		return true
	}
	return s.disk != nil && s.disk.has(k)
}

func (s *store) put(k sliceKey, b []byte) {
	if s.inMemory(k.key) {
		s.mem.Set(k, b)
	}
	if s.disk != nil {
		s.disk.put(k, b)
	}
}

// purge drops every slice and the metadata of key; it reports whether the
// POP had anything for it.
func (s *store) purge(key string) bool {
	s.mu.Lock()
	s.purges[key]++
	info, ok := s.meta[key]
	delete(s.meta, key)
	if ok && info.Tag != "" {
		if set := s.tags[info.Tag]; set != nil {
			delete(set, key)
			if len(set) == 0 {
				delete(s.tags, info.Tag)
			}
		}
	}
	s.mu.Unlock()
	n := int64(1)
	if ok {
		n = s.slices(info.Size)
	}
	for i := int64(0); i < n; i++ {
		k := sliceKey{key, i}
		if _, hit := s.mem.Invalidate(k); hit {
			ok = true
		}
		if s.disk != nil {
			s.disk.remove(k)
		}
	}
	if s.disk != nil {
		s.disk.removeMeta(key)
	}
	return ok
}

// epoch returns the purge count of key (see purges).
func (s *store) epoch(key string) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.purges[key]
}

func (s *store) keysByTag(tag string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.tags[tag]))
	for k := range s.tags[tag] {
		out = append(out, k)
	}
	return out
}

func (s *store) keysByPrefix(prefix string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for k := range s.meta {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

func (s *store) objectCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.meta)
}

type tier int

const (
	tierNone tier = iota
	tierMemory
	tierDisk
)

// diskTier keeps slices as one file each under dir/slices, evicted least
// recently used once over budget. The LRU order survives a restart through
// file modification times (touched at most once a minute per file on hits).
type diskTier struct {
	dir    string
	budget int64

	mu    sync.Mutex
	lru   *list.List // front = most recently used; values *diskEntry
	index map[string]*list.Element
	used  int64
	// open keeps slice files open for zero-copy hits (sendFile), keyed by
	// slice name; an entry is closed when its file is replaced, removed or
	// evicted. A slice file is never rewritten in place (put renames a new
	// file over it), so an open descriptor always reads one version.
	open map[string]openSlice
}

type openSlice struct {
	f    *os.File
	size int64
	head []byte        // the file's first bytes (net/http copies these itself)
	el   *list.Element // the index entry the file was opened for
}

// headLen is how many leading bytes of an open slice file are kept in
// memory: net/http copies the first 512 bytes of a ReadFrom body itself.
const headLen = 512

// maxOpenSlices bounds the descriptors kept by diskTier.open.
const maxOpenSlices = 1024

type diskEntry struct {
	name    string
	size    int64
	touched time.Time
}

// onDisk is what a file of size bytes takes on disk, in whole 4 KiB blocks
// (the budget counts what the file system spends, not only the payload).
func onDisk(size int64) int64 { return (size + 4095) &^ 4095 }

func openDisk(dir string, budget int64) (*diskTier, error) {
	for _, sub := range []string{"slices", "meta"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("edge: disk tier: %w", err)
		}
	}
	d := &diskTier{dir: dir, budget: budget, lru: list.New(), index: map[string]*list.Element{}, open: map[string]openSlice{}}
	var found []diskEntry
	err := filepath.WalkDir(filepath.Join(dir, "slices"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if strings.HasSuffix(p, ".tmp") {
			_ = os.Remove(p)
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return nil
		}
		found = append(found, diskEntry{name: e.Name(), size: onDisk(fi.Size()), touched: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("edge: scan disk tier: %w", err)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].touched.Before(found[j].touched) })
	for i := range found {
		e := found[i]
		d.index[e.name] = d.lru.PushFront(&e)
		d.used += e.size
	}
	d.evict()
	return d, nil
}

func sliceName(k sliceKey) string {
	h := sha256.Sum256([]byte(k.key + "\x00" + strconv.FormatInt(k.idx, 10)))
	return hex.EncodeToString(h[:20])
}

func (d *diskTier) path(name string) string {
	return filepath.Join(d.dir, "slices", name[:2], name)
}

func (d *diskTier) metaPath(key string) string {
	h := sha256.Sum256([]byte(key))
	return filepath.Join(d.dir, "meta", hex.EncodeToString(h[:20])+".json")
}

func (d *diskTier) has(k sliceKey) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.index[sliceName(k)]
	return ok
}

func (d *diskTier) get(k sliceKey) ([]byte, bool) {
	name := sliceName(k)
	d.mu.Lock()
	el, ok := d.index[name]
	touch := false
	if ok {
		d.lru.MoveToFront(el)
		e := el.Value.(*diskEntry)
		if time.Since(e.touched) > time.Minute {
			e.touched, touch = time.Now(), true
		}
	}
	d.mu.Unlock()
	if !ok {
		return nil, false
	}
	b, err := os.ReadFile(d.path(name))
	if err != nil {
		d.remove(k)
		return nil, false
	}
	if touch {
		now := time.Now()
		_ = os.Chtimes(d.path(name), now, now)
	}
	return b, true
}

func (d *diskTier) put(k sliceKey, b []byte) {
	if int64(len(b)) > d.budget {
		return
	}
	name := sliceName(k)
	p := d.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		_ = os.Remove(tmp)
		return
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return
	}
	d.mu.Lock()
	if el, ok := d.index[name]; ok {
		d.used -= el.Value.(*diskEntry).size
		d.lru.Remove(el)
	}
	d.closeLocked(name)
	d.index[name] = d.lru.PushFront(&diskEntry{name: name, size: onDisk(int64(len(b))), touched: time.Now()})
	d.used += onDisk(int64(len(b)))
	d.mu.Unlock()
	d.evict()
}

// evict removes least recently used files until the tier fits its budget.
func (d *diskTier) evict() {
	var victims []string
	d.mu.Lock()
	for d.used > d.budget && d.lru.Len() > 0 {
		el := d.lru.Back()
		e := el.Value.(*diskEntry)
		d.lru.Remove(el)
		delete(d.index, e.name)
		d.closeLocked(e.name)
		d.used -= e.size
		victims = append(victims, e.name)
	}
	d.mu.Unlock()
	for _, n := range victims {
		_ = os.Remove(d.path(n))
	}
}

func (d *diskTier) remove(k sliceKey) {
	name := sliceName(k)
	d.mu.Lock()
	el, ok := d.index[name]
	if ok {
		d.used -= el.Value.(*diskEntry).size
		d.lru.Remove(el)
		delete(d.index, name)
	}
	d.closeLocked(name)
	d.mu.Unlock()
	if ok {
		_ = os.Remove(d.path(name))
	}
}

// closeLocked forgets the open descriptor of a slice file. Closing is safe
// while a response is sending from it: the descriptor is released only
// after the last use (os.File reference counting), and later uses fail and
// fall back to the memory copy.
func (d *diskTier) closeLocked(name string) {
	if o, ok := d.open[name]; ok {
		delete(d.open, name)
		_ = o.f.Close()
	}
}

// file returns the open slice file of k, opening it on first use; ok is
// false when the slice is not on disk.
func (d *diskTier) file(k sliceKey) (openSlice, bool) {
	name := sliceName(k)
	d.mu.Lock()
	el, ok := d.index[name]
	if ok {
		d.lru.MoveToFront(el) // a zero-copy hit is a use, as get is
	}
	if o, cached := d.open[name]; ok && cached && o.el == el {
		d.mu.Unlock()
		return o, true
	}
	d.mu.Unlock()
	if !ok {
		return openSlice{}, false
	}
	f, err := os.Open(d.path(name))
	if err != nil {
		return openSlice{}, false
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return openSlice{}, false
	}
	head := make([]byte, min(fi.Size(), headLen))
	if _, err := f.ReadAt(head, 0); err != nil {
		_ = f.Close()
		return openSlice{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur, still := d.index[name]; !still || cur != el {
		_ = f.Close() // replaced or removed meanwhile
		return openSlice{}, false
	}
	if o, cached := d.open[name]; cached {
		_ = f.Close()
		return o, true
	}
	if len(d.open) >= maxOpenSlices {
		for n := range d.open { // any one: the set is only a descriptor cache
			d.closeLocked(n)
			break
		}
	}
	o := openSlice{f: f, size: fi.Size(), head: head, el: el}
	d.open[name] = o
	return o, true
}

// close releases the open slice files.
func (d *diskTier) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for n := range d.open {
		d.closeLocked(n)
	}
}

func (d *diskTier) usage() (bytes int64, files int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.used, d.lru.Len()
}

func (d *diskTier) putMeta(info objectInfo) {
	b, err := json.Marshal(info)
	if err != nil {
		return
	}
	p := d.metaPath(info.Key)
	if err := os.WriteFile(p+".tmp", b, 0o644); err == nil {
		_ = os.Rename(p+".tmp", p)
	}
}

func (d *diskTier) removeMeta(key string) { _ = os.Remove(d.metaPath(key)) }

func (d *diskTier) loadMeta() []objectInfo {
	entries, err := os.ReadDir(filepath.Join(d.dir, "meta"))
	if err != nil {
		return nil
	}
	var out []objectInfo
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.dir, "meta", e.Name()))
		if err != nil {
			continue
		}
		var info objectInfo
		if json.Unmarshal(b, &info) == nil && info.Key != "" {
			out = append(out, info)
		}
	}
	return out
}
