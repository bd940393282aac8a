// Reference xDS server for the scale benchmarks: go-control-plane used as a library (snapshot
// cache + pkg/server/v3), serving ONE snapshot to every node over ADS (SotW and delta). The
// fixture has the same shape as bench/storm/weft-fixture-server.ts.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// allNodes maps every node to the same cache key, so one snapshot serves all proxies.
type allNodes struct{}

func (allNodes) ID(*core.Node) string { return "all" }

var adsSource = &core.ConfigSource{
	ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
	ResourceApiVersion:    core.ApiVersion_V3,
}

func sockAddr(ip string, port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Protocol: core.SocketAddress_TCP, Address: ip, PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
	}}}
}

func buildSnapshot(clusters, endpoints, listeners int) *cachev3.Snapshot {
	var cds, eds, lds, rds []types.Resource
	for i := 0; i < clusters; i++ {
		name := fmt.Sprintf("svc-%d", i)
		cds = append(cds, &cluster.Cluster{
			Name:                 name,
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
			EdsClusterConfig:     &cluster.Cluster_EdsClusterConfig{EdsConfig: adsSource},
			ConnectTimeout:       durationpb.New(time.Second),
		})
		var lbs []*endpoint.LbEndpoint
		for j := 0; j < endpoints; j++ {
			ip := fmt.Sprintf("10.1.%d.%d", i/250, i%250)
			lbs = append(lbs, &endpoint.LbEndpoint{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: sockAddr(ip, uint32(8080+j))}}})
		}
		eds = append(eds, &endpoint.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpoint.LocalityLbEndpoints{{LbEndpoints: lbs}}})
	}
	routerAny, err := anypb.New(&router.Router{})
	if err != nil {
		log.Fatal(err)
	}
	for k := 0; k < listeners; k++ {
		lname := fmt.Sprintf("listener-%d", k)
		rname := fmt.Sprintf("route-%d", k)
		manager := &hcm.HttpConnectionManager{
			StatPrefix:     lname,
			RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{RouteConfigName: rname, ConfigSource: adsSource}},
			HttpFilters:    []*hcm.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: routerAny}}},
		}
		mAny, err := anypb.New(manager)
		if err != nil {
			log.Fatal(err)
		}
		lds = append(lds, &listener.Listener{
			Name:    lname,
			Address: sockAddr("0.0.0.0", uint32(10000+k)),
			FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
				Name: "envoy.filters.network.http_connection_manager", ConfigType: &listener.Filter_TypedConfig{TypedConfig: mAny},
			}}}},
		})
		target := "svc-0"
		if clusters > 0 {
			target = fmt.Sprintf("svc-%d", k%clusters)
		}
		rds = append(rds, &route.RouteConfiguration{
			Name: rname,
			VirtualHosts: []*route.VirtualHost{{
				Name: rname + "-all", Domains: []string{"*"},
				Routes: []*route.Route{{
					Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
					Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: target}}},
				}},
			}},
		})
	}
	snap, err := cachev3.NewSnapshot("v1", map[resource.Type][]types.Resource{
		resource.ClusterType: cds, resource.EndpointType: eds, resource.ListenerType: lds, resource.RouteType: rds,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := snap.Consistent(); err != nil {
		log.Fatalf("snapshot inconsistent: %v", err)
	}
	return snap
}

func main() {
	port := flag.Int("port", 18000, "xDS port")
	clusters := flag.Int("clusters", 100, "clusters (svc-<i>)")
	endpoints := flag.Int("endpoints", 10, "endpoints per cluster")
	listeners := flag.Int("listeners", 20, "HTTP listeners (each with its RDS route)")
	dumpDir := flag.String("dump", "", "serve a Weft dump directory (manifest.json + parts) instead of the synthetic fixture: one snapshot per class; then read load commands on stdin")
	check := flag.Bool("check", true, "-dump: check each class snapshot with Snapshot.Consistent() and log problems")
	prehash := flag.Bool("prehash", false, "-dump: build delta version maps from per-part precomputed resource hashes instead of go-control-plane's per-snapshot ConstructVersionMap")
	flag.Parse()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cache cachev3.SnapshotCache
	var dump *dumpState
	if *dumpDir == "" {
		cache = cachev3.NewSnapshotCache(true, allNodes{}, nil)
		if err := cache.SetSnapshot(ctx, "all", buildSnapshot(*clusters, *endpoints, *listeners)); err != nil {
			log.Fatal(err)
		}
	} else {
		hash := &classHash{}
		cache = cachev3.NewSnapshotCache(true, hash, nil)
		dump = &dumpState{cache: cache, hash: hash, check: *check, prehash: *prehash}
		res, err := dump.load(ctx, *dumpDir, time.Now())
		if err != nil {
			log.Fatalf("-dump %s: %v", *dumpDir, err)
		}
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		log.Printf("dump: loaded %s: %d classes, %d parts, %d ms (parse %d ms, check %d ms, %d inconsistent); live heap %d MB",
			res.Loaded, res.Classes, res.Parts, res.Millis, res.ParseMillis, res.CheckMillis, res.Inconsistent, ms.HeapAlloc>>20)
	}
	srv := serverv3.NewServer(ctx, cache, nil)
	gs := grpc.NewServer(
		grpc.MaxConcurrentStreams(1_000_000),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, srv)
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		gs.Stop()
	}()
	if dump == nil {
		fmt.Println("ready")
	} else {
		printLine("ready")
		go dump.serveCommands(ctx, os.Stdin)
	}
	if err := gs.Serve(lis); err != nil {
		log.Fatal(err)
	}
}
