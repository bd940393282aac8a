package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tls "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// A tiny dump in the shape Weft writes: part "out" (shared outbound bundle), parts "a" and "b"
// (small per-class bundles); classes c0=[out,a] c1=[out,b] c2=[out,a,b] c3=[a,b]; node
// loadgen-<i> -> c<i%4>. Generation 2 changes only "out": out-svc-0's endpoints, plus a new
// cluster out-svc-new with its ClusterLoadAssignment.

type fixtureRecord struct {
	typeURL, name string
	body          []byte
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func fixtureBundle(prefix string, clusters int, port uint32, gen int, withSecret bool) []fixtureRecord {
	return bundle(prefix, clusters, port, prefix == "out" && gen >= 2, withSecret)
}

// bundle: clusters EDS clusters <prefix>-svc-<i> with their ClusterLoadAssignments, one HTTP
// listener and its route; changed: <prefix>-svc-0's endpoint port differs and <prefix>-svc-new
// is added.
func bundle(prefix string, clusters int, port uint32, changed bool, withSecret bool) []fixtureRecord {
	var recs []fixtureRecord
	add := func(t, name string, m proto.Message) {
		recs = append(recs, fixtureRecord{t, name, mustMarshal(m)})
	}
	names := []string{}
	for i := 0; i < clusters; i++ {
		names = append(names, fmt.Sprintf("%s-svc-%d", prefix, i))
	}
	if changed {
		names = append(names, prefix+"-svc-new")
	}
	for i, name := range names {
		add(resource.ClusterType, name, &cluster.Cluster{
			Name:                 name,
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
			EdsClusterConfig:     &cluster.Cluster_EdsClusterConfig{EdsConfig: adsSource, ServiceName: name},
			ConnectTimeout:       durationpb.New(time.Second),
		})
		epPort := uint32(8080)
		if changed && i == 0 {
			epPort = 9090
		}
		add(resource.EndpointType, name, &endpoint.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpoint.LocalityLbEndpoints{{
			LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: sockAddr(fmt.Sprintf("10.2.%d.%d", len(prefix), i), epPort)}}}},
		}}})
	}
	routerAny, _ := anypb.New(&router.Router{})
	lname, rname := fmt.Sprintf("%s-listener", prefix), fmt.Sprintf("%s-route", prefix)
	mAny, _ := anypb.New(&hcm.HttpConnectionManager{
		StatPrefix:     lname,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{RouteConfigName: rname, ConfigSource: adsSource}},
		HttpFilters:    []*hcm.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: routerAny}}},
	})
	add(resource.ListenerType, lname, &listener.Listener{
		Name:    lname,
		Address: sockAddr("0.0.0.0", port),
		FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
			Name: "envoy.filters.network.http_connection_manager", ConfigType: &listener.Filter_TypedConfig{TypedConfig: mAny},
		}}}},
	})
	add(resource.RouteType, rname, &route.RouteConfiguration{Name: rname, VirtualHosts: []*route.VirtualHost{{
		Name: rname, Domains: []string{"*"},
		Routes: []*route.Route{{
			Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
			Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: names[0]}}},
		}},
	}}})
	if withSecret {
		add(resource.SecretType, prefix+"-secret", &tls.Secret{Name: prefix + "-secret", Type: &tls.Secret_ValidationContext{
			ValidationContext: &tls.CertificateValidationContext{TrustedCa: &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: "ca"}}}}})
	}
	return recs
}

func encodeRecords(recs []fixtureRecord) []byte {
	var buf bytes.Buffer
	put := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		buf.Write(n[:])
		buf.Write(b)
	}
	for _, r := range recs {
		put([]byte(r.typeURL))
		put([]byte(r.name))
		put(r.body)
	}
	return buf.Bytes()
}

// writeFixtureDump writes generation gen of the fixture into dir, with nodes loadgen-0..nodes-1.
func writeFixtureDump(dir string, gen, nodes int) error {
	parts := map[string][]fixtureRecord{
		"out": fixtureBundle("out", 50, 10000, gen, false),
		"a":   fixtureBundle("a", 3, 10001, gen, true),
		"b":   fixtureBundle("b", 3, 10002, gen, false),
	}
	classParts := map[string][]string{"c0": {"out", "a"}, "c1": {"out", "b"}, "c2": {"out", "a", "b"}, "c3": {"a", "b"}}
	nodeClass := func(i int) string { return "c" + strconv.Itoa(i%4) }
	return writeDump(dir, parts, classParts, nodes, nodeClass)
}

// writeBigDump: the load-test shape at scale: outParts outbound parts of 2*perOut+2 resources
// (shared by classes/outParts classes each), one 4-resource part per class; class k =
// [out<k%outParts>, own<k>]; node loadgen-<i> -> class i%classes. Generation 2 changes out0 only.
func writeBigDump(dir string, gen, outParts, perOut, classes, nodes int) error {
	parts := map[string][]fixtureRecord{}
	classParts := map[string][]string{}
	for o := 0; o < outParts; o++ {
		id := "out" + strconv.Itoa(o)
		parts[id] = bundle(id, perOut, 10000, gen >= 2 && o == 0, false)
	}
	for k := 0; k < classes; k++ {
		own := "own" + strconv.Itoa(k)
		parts[own] = bundle(own, 1, 15006, false, false)
		classParts["k"+strconv.Itoa(k)] = []string{"out" + strconv.Itoa(k%outParts), own}
	}
	nodeClass := func(i int) string { return "k" + strconv.Itoa(i%classes) }
	return writeDump(dir, parts, classParts, nodes, nodeClass)
}

func writeDump(dir string, parts map[string][]fixtureRecord, classParts map[string][]string, nodes int, nodeClass func(int) string) error {
	m := manifest{Parts: map[string]string{}, Classes: map[string]manifestClass{}, Nodes: map[string]string{}}
	if err := os.MkdirAll(filepath.Join(dir, "parts"), 0o755); err != nil {
		return err
	}
	for id, recs := range parts {
		rel := filepath.Join("parts", id+".bin")
		if err := os.WriteFile(filepath.Join(dir, rel), encodeRecords(recs), 0o644); err != nil {
			return err
		}
		m.Parts[id] = rel
	}
	for key, ids := range classParts {
		// Per-type content version: hash of the class's records of that type, sorted by name.
		byType := map[string][]fixtureRecord{}
		for _, id := range ids {
			for _, r := range parts[id] {
				byType[r.typeURL] = append(byType[r.typeURL], r)
			}
		}
		versions := map[string]string{}
		for t, recs := range byType {
			sort.Slice(recs, func(i, j int) bool { return recs[i].name < recs[j].name })
			h := sha256.New()
			for _, r := range recs {
				h.Write([]byte(r.name))
				h.Write(r.body)
			}
			versions[t] = hex.EncodeToString(h.Sum(nil))[:12]
		}
		m.Classes[key] = manifestClass{Parts: ids, Versions: versions}
	}
	for i := 0; i < nodes; i++ {
		m.Nodes["loadgen-"+strconv.Itoa(i)] = nodeClass(i)
	}
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644)
}

// TestWriteFixture writes gen1/ and gen2/ under $REFSERVER_DUMP_OUT (for driving a real
// refserver -dump with bin/loadgen); skipped without it. $REFSERVER_DUMP_NODES: node count (40).
func TestWriteFixture(t *testing.T) {
	out := os.Getenv("REFSERVER_DUMP_OUT")
	if out == "" {
		t.Skip("REFSERVER_DUMP_OUT not set")
	}
	nodes := 40
	if s := os.Getenv("REFSERVER_DUMP_NODES"); s != "" {
		nodes, _ = strconv.Atoi(s)
	}
	for gen := 1; gen <= 2; gen++ {
		if err := writeFixtureDump(filepath.Join(out, fmt.Sprintf("gen%d", gen)), gen, nodes); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWriteBigFixture writes big1/ and big2/ under $REFSERVER_BIG_OUT (2000 classes, 10
// outbound parts of ~7000 resources); skipped without it.
func TestWriteBigFixture(t *testing.T) {
	out := os.Getenv("REFSERVER_BIG_OUT")
	if out == "" {
		t.Skip("REFSERVER_BIG_OUT not set")
	}
	for gen := 1; gen <= 2; gen++ {
		if err := writeBigDump(filepath.Join(out, fmt.Sprintf("big%d", gen)), gen, 10, 3500, 2000, 2000); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDumpLoad(t *testing.T) {
	tmp := t.TempDir()
	g1, g2 := filepath.Join(tmp, "gen1"), filepath.Join(tmp, "gen2")
	if err := writeFixtureDump(g1, 1, 8); err != nil {
		t.Fatal(err)
	}
	if err := writeFixtureDump(g2, 2, 8); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hash := &classHash{}
	cache := cachev3.NewSnapshotCache(true, hash, nil)
	s := &dumpState{cache: cache, hash: hash, check: true}

	res, err := s.load(ctx, g1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Classes != 4 || res.Set != 4 || res.Inconsistent != 0 || res.PartsReused != 0 || res.Parts != 3 {
		t.Fatalf("gen1: %+v", res)
	}
	if got := hash.ID(&core.Node{Id: "loadgen-5"}); got != "c1" {
		t.Fatalf("loadgen-5 -> %q", got)
	}
	if got := hash.ID(&core.Node{Id: "stranger"}); got != "stranger" {
		t.Fatalf("stranger -> %q", got)
	}
	snap := func(key string) *cachev3.Snapshot {
		rs, err := cache.GetSnapshot(key)
		if err != nil {
			t.Fatal(err)
		}
		return rs.(*cachev3.Snapshot)
	}
	c0, c1, c2, c3 := snap("c0"), snap("c1"), snap("c2"), snap("c3")
	if n := len(c0.GetResources(resource.ClusterType)); n != 53 {
		t.Fatalf("c0 clusters: %d", n)
	}
	if n := len(c2.GetResources(resource.ClusterType)); n != 56 {
		t.Fatalf("c2 clusters: %d", n)
	}
	if n := len(c3.GetResources(resource.SecretType)); n != 1 {
		t.Fatalf("c3 secrets: %d", n)
	}
	// Shared message pointers across classes.
	if c0.GetResources(resource.EndpointType)["out-svc-0"] != c1.GetResources(resource.EndpointType)["out-svc-0"] {
		t.Fatal("out-svc-0 not shared between c0 and c1")
	}
	if c0.GetVersion(resource.ClusterType) == "" || c0.GetVersion(resource.ClusterType) == c1.GetVersion(resource.ClusterType) {
		t.Fatalf("versions: %q %q", c0.GetVersion(resource.ClusterType), c1.GetVersion(resource.ClusterType))
	}

	res, err = s.load(ctx, g2, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Set != 3 || res.PartsReused != 2 || res.Inconsistent != 0 {
		t.Fatalf("gen2: %+v", res)
	}
	if snap("c3") != c3 {
		t.Fatal("c3 was re-set although unchanged")
	}
	if n := len(snap("c0").GetResources(resource.ClusterType)); n != 54 {
		t.Fatalf("gen2 c0 clusters: %d", n)
	}
	if snap("c0").GetVersion(resource.ClusterType) == c0.GetVersion(resource.ClusterType) {
		t.Fatal("c0 CDS version unchanged")
	}
	res, err = s.load(ctx, g2, time.Now())
	if err != nil || res.Set != 0 || res.PartsReused != 3 {
		t.Fatalf("gen2 again: %+v %v", res, err)
	}

	// A broken dump is rejected and changes nothing.
	bad := filepath.Join(tmp, "bad")
	if err := writeFixtureDump(bad, 1, 8); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(bad, "parts", "out.bin"))
	os.WriteFile(filepath.Join(bad, "parts", "out.bin"), data[:len(data)-3], 0o644)
	if _, err := s.load(ctx, bad, time.Now()); err == nil {
		t.Fatal("truncated part accepted")
	}
	if _, err := s.load(ctx, filepath.Join(tmp, "missing"), time.Now()); err == nil {
		t.Fatal("missing dir accepted")
	}
	if n := len(snap("c0").GetResources(resource.ClusterType)); n != 54 {
		t.Fatalf("after bad loads c0 clusters: %d", n)
	}
}

// -prehash builds the same delta version maps as go-control-plane's ConstructVersionMap.
func TestPrehashVersionMap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gen1")
	if err := writeFixtureDump(dir, 1, 8); err != nil {
		t.Fatal(err)
	}
	hash := &classHash{}
	cache := cachev3.NewSnapshotCache(true, hash, nil)
	s := &dumpState{cache: cache, hash: hash, check: true, prehash: true}
	if _, err := s.load(context.Background(), dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"c0", "c1", "c2", "c3"} {
		rs, err := cache.GetSnapshot(key)
		if err != nil {
			t.Fatal(err)
		}
		hs := rs.(*hashedSnapshot)
		if err := hs.ConstructVersionMap(); err != nil {
			t.Fatal(err)
		}
		stock := &cachev3.Snapshot{Resources: hs.Resources}
		if err := stock.ConstructVersionMap(); err != nil {
			t.Fatal(err)
		}
		if len(stock.VersionMap) != len(hs.VersionMap) {
			t.Fatalf("%s: %d types vs %d", key, len(hs.VersionMap), len(stock.VersionMap))
		}
		for typ, want := range stock.VersionMap {
			got := hs.GetVersionMap(typ)
			if len(got) != len(want) {
				t.Fatalf("%s %s: %d vs %d", key, typ, len(got), len(want))
			}
			for n, v := range want {
				if got[n] != v {
					t.Fatalf("%s %s %s: %q vs %q", key, typ, n, got[n], v)
				}
			}
		}
	}
}
