// -dump mode: serve exactly the resources Weft generated (a dump directory: manifest.json plus
// part files), one go-control-plane snapshot per proxy class, with a NodeHash mapping node ids
// to class keys. Parts shared by many classes are unmarshalled once; the classes' snapshots
// share the same message pointers (and, for a type that comes from a single part, the same
// name -> resource map). See README.md here.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3" // Secret type registration
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// manifest is manifest.json of a dump directory.
type manifest struct {
	Parts   map[string]string        `json:"parts"`
	Classes map[string]manifestClass `json:"classes"`
	Nodes   map[string]string        `json:"nodes"`
}

type manifestClass struct {
	Parts    []string          `json:"parts"`
	Versions map[string]string `json:"versions"`
}

// part is one unmarshalled part file; immutable once loaded (shared by classes and snapshots).
type part struct {
	id     string
	sum    [32]byte
	byType map[string]map[string]types.ResourceWithTTL // typeURL -> name -> resource
	count  int

	// -prehash: per-resource version hashes (as go-control-plane computes them), built once.
	hashOnce sync.Once
	hashes   map[string]map[string]string // typeURL -> name -> hash
	hashErr  error
}

// resourceHashes returns the delta version of every resource of the part, computed as
// Snapshot.ConstructVersionMap does (sha256 of the deterministic marshaling), once per part.
func (p *part) resourceHashes() (map[string]map[string]string, error) {
	p.hashOnce.Do(func() {
		p.hashes = make(map[string]map[string]string, len(p.byType))
		for t, items := range p.byType {
			m := make(map[string]string, len(items))
			for name, r := range items {
				b, err := cachev3.MarshalResource(r.Resource)
				if err != nil {
					p.hashErr = fmt.Errorf("part %s: marshal %q: %v", p.id, name, err)
					return
				}
				m[name] = cachev3.HashResource(b)
			}
			p.hashes[t] = m
		}
	})
	return p.hashes, p.hashErr
}

// hashedSnapshot (-prehash) is a class snapshot whose delta version map is assembled from its
// parts' precomputed hashes (same values as the stock ConstructVersionMap, computed once per
// part instead of once per class snapshot; a type from a single part shares that part's map).
type hashedSnapshot struct {
	*cachev3.Snapshot
	parts []*part
}

func (s *hashedSnapshot) ConstructVersionMap() error {
	if s.VersionMap != nil {
		return nil
	}
	vm := make(map[string]map[string]string)
	for i := range s.Resources {
		typeURL, err := cachev3.GetResponseTypeURL(types.ResponseType(i))
		if err != nil {
			return err
		}
		var from []map[string]string
		total := 0
		for _, p := range s.parts {
			hs, err := p.resourceHashes()
			if err != nil {
				return err
			}
			if m := hs[typeURL]; len(m) > 0 {
				from = append(from, m)
				total += len(m)
			}
		}
		switch len(from) {
		case 0:
			vm[typeURL] = map[string]string{}
		case 1:
			vm[typeURL] = from[0]
		default:
			u := make(map[string]string, total)
			for _, m := range from {
				for k, v := range m {
					u[k] = v
				}
			}
			vm[typeURL] = u
		}
	}
	s.VersionMap = vm
	return nil
}

// class is the state of one class key: the parts and versions its current snapshot was built from.
type class struct {
	parts    []*part
	versions map[string]string
	snap     *cachev3.Snapshot
}

// cached is what is given to SetSnapshot for class c.
func (s *dumpState) cached(c *class) cachev3.ResourceSnapshot {
	if s.prehash {
		return &hashedSnapshot{Snapshot: c.snap, parts: c.parts}
	}
	return c.snap
}

// dumpState is owned by the goroutine that runs loads (startup, then the stdin reader).
type dumpState struct {
	cache   cachev3.SnapshotCache
	hash    *classHash
	check   bool
	prehash bool
	parts   map[string]*part
	classes map[string]*class
}

// classHash is the NodeHash of -dump mode: node id -> class key from the manifest; an unknown
// id maps to itself (logged once).
type classHash struct {
	nodes         atomic.Pointer[map[string]string]
	loggedUnknown atomic.Bool
}

func (h *classHash) ID(node *core.Node) string {
	id := node.GetId()
	if m := h.nodes.Load(); m != nil {
		if key, ok := (*m)[id]; ok {
			return key
		}
	}
	if h.loggedUnknown.CompareAndSwap(false, true) {
		log.Printf("dump: node id %q is not in the manifest; using the id as its cache key (further unknown ids not logged)", id)
	}
	return id
}

// loadResult is the reply line of a load.
type loadResult struct {
	Loaded       string `json:"loaded"`
	Classes      int    `json:"classes"`
	Set          int    `json:"set"`
	Millis       int64  `json:"millis"`
	Parts        int    `json:"parts"`
	PartsReused  int    `json:"partsReused"`
	ParseMillis  int64  `json:"parseMillis"`
	CheckMillis  int64  `json:"checkMillis"`
	Inconsistent int    `json:"inconsistent"`
}

// readPart reads and decodes one part file: records of [u32 BE len][typeUrl][u32 BE len][name]
// [u32 BE len][serialized resource].
func decodePart(id string, data []byte, sum [32]byte) (*part, error) {
	p := &part{id: id, sum: sum, byType: map[string]map[string]types.ResourceWithTTL{}}
	field := func(off int, what string) ([]byte, int, error) {
		if off+4 > len(data) {
			return nil, 0, fmt.Errorf("part %s: truncated %s length at byte %d", id, what, off)
		}
		n := int(binary.BigEndian.Uint32(data[off:]))
		off += 4
		if n < 0 || off+n > len(data) {
			return nil, 0, fmt.Errorf("part %s: %s of %d bytes at byte %d overruns the file (%d bytes)", id, what, n, off, len(data))
		}
		return data[off : off+n], off + n, nil
	}
	for off := 0; off < len(data); {
		typeB, next, err := field(off, "typeUrl")
		if err != nil {
			return nil, err
		}
		nameB, next, err := field(next, "name")
		if err != nil {
			return nil, err
		}
		body, next, err := field(next, "body")
		if err != nil {
			return nil, err
		}
		off = next
		typeURL, name := string(typeB), string(nameB)
		if cachev3.GetResponseType(typeURL) == types.UnknownType {
			return nil, fmt.Errorf("part %s: resource %q has unsupported type %q", id, name, typeURL)
		}
		mt, err := protoregistry.GlobalTypes.FindMessageByURL(typeURL)
		if err != nil {
			return nil, fmt.Errorf("part %s: type %q: %v", id, typeURL, err)
		}
		msg := mt.New().Interface()
		if err := proto.Unmarshal(body, msg); err != nil {
			return nil, fmt.Errorf("part %s: resource %q (%s): %v", id, name, typeURL, err)
		}
		if got := cachev3.GetResourceName(msg); got != name {
			return nil, fmt.Errorf("part %s: record name %q but the resource's name is %q (%s)", id, name, got, typeURL)
		}
		m := p.byType[typeURL]
		if m == nil {
			m = map[string]types.ResourceWithTTL{}
			p.byType[typeURL] = m
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("part %s: duplicate resource %q (%s)", id, name, typeURL)
		}
		m[name] = types.ResourceWithTTL{Resource: msg}
		p.count++
	}
	return p, nil
}

// loadParts reads every part of the manifest, reusing an already-loaded part when its id and
// file hash match, and decoding the others in parallel.
func (s *dumpState) loadParts(dir string, m *manifest) (map[string]*part, int, error) {
	ids := make([]string, 0, len(m.Parts))
	for id := range m.Parts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make(map[string]*part, len(ids))
	var (
		mu       sync.Mutex
		firstErr error
		reused   int
		wg       sync.WaitGroup
	)
	jobs := make(chan string)
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				rel := m.Parts[id]
				path := rel
				if !filepath.IsAbs(path) {
					path = filepath.Join(dir, rel)
				}
				data, err := os.ReadFile(path)
				var p *part
				if err == nil {
					sum := sha256.Sum256(data)
					if old := s.parts[id]; old != nil && old.sum == sum {
						p = old
						mu.Lock()
						reused++
						mu.Unlock()
					} else {
						p, err = decodePart(id, data, sum)
					}
				}
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
				} else {
					out[id] = p
				}
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		jobs <- id
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, 0, firstErr
	}
	return out, reused, nil
}

// buildSnapshot makes the snapshot of one class: per type, the union of its parts' resources
// with the manifest's version for that type. A type that comes from one part shares that
// part's map (go-control-plane only reads Snapshot.Resources[i].Items).
func buildClassSnapshot(key string, parts []*part, versions map[string]string) (*cachev3.Snapshot, error) {
	snap := &cachev3.Snapshot{}
	typeURLs := map[string]bool{}
	for _, p := range parts {
		for t := range p.byType {
			typeURLs[t] = true
		}
	}
	for t := range versions {
		typeURLs[t] = true
	}
	for t := range typeURLs {
		idx := cachev3.GetResponseType(t)
		if idx == types.UnknownType {
			return nil, fmt.Errorf("class %s: unknown type %q", key, t)
		}
		version, ok := versions[t]
		var from []*part
		total := 0
		for _, p := range parts {
			if m := p.byType[t]; len(m) > 0 {
				from = append(from, p)
				total += len(m)
			}
		}
		if !ok && total > 0 {
			return nil, fmt.Errorf("class %s: %d resources of %s but no version for it in the manifest", key, total, t)
		}
		var items map[string]types.ResourceWithTTL
		switch len(from) {
		case 0:
			items = map[string]types.ResourceWithTTL{}
		case 1:
			items = from[0].byType[t]
		default:
			items = make(map[string]types.ResourceWithTTL, total)
			for _, p := range from {
				for name, r := range p.byType[t] {
					if _, dup := items[name]; dup {
						return nil, fmt.Errorf("class %s: resource %q (%s) is in more than one of its parts (one is %s)", key, name, t, p.id)
					}
					items[name] = r
				}
			}
		}
		snap.Resources[idx] = cachev3.Resources{Version: version, Items: items}
	}
	return snap, nil
}

func sameClass(c *class, parts []*part, versions map[string]string) bool {
	if c == nil || len(c.parts) != len(parts) || len(c.versions) != len(versions) {
		return false
	}
	for i := range parts {
		if c.parts[i] != parts[i] {
			return false
		}
	}
	for t, v := range versions {
		if old, ok := c.versions[t]; !ok || old != v {
			return false
		}
	}
	return true
}

// load reads dump directory dir and sets the snapshot of every class whose parts or versions
// changed. Nothing is set unless the whole dump is valid. t0 is when the command was read.
func (s *dumpState) load(ctx context.Context, dir string, t0 time.Time) (res *loadResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic while loading %s: %v", dir, r)
		}
	}()
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest.json: %v", err)
	}
	if len(m.Classes) == 0 {
		return nil, errors.New("manifest.json: no classes")
	}
	parts, reused, err := s.loadParts(dir, &m)
	if err != nil {
		return nil, err
	}
	parseMs := time.Since(t0).Milliseconds()

	keys := make([]string, 0, len(m.Classes))
	for k := range m.Classes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	next := make(map[string]*class, len(keys))
	var changed []string
	for _, key := range keys {
		mc := m.Classes[key]
		ps := make([]*part, 0, len(mc.Parts))
		for _, id := range mc.Parts {
			p := parts[id]
			if p == nil {
				return nil, fmt.Errorf("class %s: part %q is not in manifest.parts", key, id)
			}
			ps = append(ps, p)
		}
		versions := mc.Versions
		if versions == nil {
			versions = map[string]string{}
		}
		if old := s.classes[key]; sameClass(old, ps, versions) {
			next[key] = old
			continue
		}
		snap, err := buildClassSnapshot(key, ps, versions)
		if err != nil {
			return nil, err
		}
		next[key] = &class{parts: ps, versions: versions, snap: snap}
		changed = append(changed, key)
	}
	for node, key := range m.Nodes {
		if _, ok := next[key]; !ok {
			return nil, fmt.Errorf("node %s: class %q is not in manifest.classes", node, key)
		}
	}

	// Consistency check (go-control-plane's Snapshot.Consistent) of the changed classes; its
	// time is reported as checkMillis and is not part of millis.
	var checkDur time.Duration
	inconsistent := 0
	if s.check {
		tc := time.Now()
		for _, key := range changed {
			if err := next[key].snap.Consistent(); err != nil {
				inconsistent++
				if inconsistent <= 5 {
					log.Printf("dump %s: class %s: snapshot not consistent: %v", dir, key, truncate(err.Error(), 400))
				}
			}
		}
		if inconsistent > 5 {
			log.Printf("dump %s: %d classes not consistent (first 5 logged)", dir, inconsistent)
		}
		checkDur = time.Since(tc)
	}

	nodes := m.Nodes
	if nodes == nil {
		nodes = map[string]string{}
	}
	s.hash.nodes.Store(&nodes)
	for _, key := range changed {
		if err := s.cache.SetSnapshot(ctx, key, s.cached(next[key])); err != nil {
			// Leave the state consistent with what the cache has: keep going, report the first error.
			log.Printf("dump %s: SetSnapshot %s: %v", dir, key, err)
		}
	}
	total := time.Since(t0) - checkDur
	s.parts = parts
	s.classes = next
	return &loadResult{
		Loaded: dir, Classes: len(keys), Set: len(changed), Millis: total.Milliseconds(),
		Parts: len(parts), PartsReused: reused, ParseMillis: parseMs,
		CheckMillis: checkDur.Milliseconds(), Inconsistent: inconsistent,
	}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// stdout is shared by "ready" and the command replies.
var stdoutMu sync.Mutex

func printJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

type command struct {
	Cmd string `json:"cmd"`
	Dir string `json:"dir"`
}

// serveCommands reads one JSON command per line from r until EOF; never exits the process.
func (s *dumpState) serveCommands(ctx context.Context, r io.Reader) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		t0 := time.Now()
		if strings.TrimSpace(line) != "" {
			s.runCommand(ctx, line, t0)
		}
		if err != nil {
			return
		}
	}
}

func (s *dumpState) runCommand(ctx context.Context, line string, t0 time.Time) {
	var c command
	if err := json.Unmarshal([]byte(line), &c); err != nil {
		printJSON(map[string]string{"error": "bad command: " + err.Error()})
		return
	}
	switch c.Cmd {
	case "load":
		if c.Dir == "" {
			printJSON(map[string]string{"error": "load: missing dir"})
			return
		}
		res, err := s.load(ctx, c.Dir, t0)
		if err != nil {
			printJSON(map[string]string{"error": "load " + c.Dir + ": " + err.Error()})
			return
		}
		log.Printf("dump: loaded %s: %d classes, %d set, %d/%d parts reused, %d ms (parse %d ms, check %d ms, %d inconsistent)",
			res.Loaded, res.Classes, res.Set, res.PartsReused, res.Parts, res.Millis, res.ParseMillis, res.CheckMillis, res.Inconsistent)
		printJSON(res)
	default:
		printJSON(map[string]string{"error": fmt.Sprintf("unknown command %q", c.Cmd)})
	}
}

func printLine(s string) {
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	fmt.Fprintln(os.Stdout, s)
}
