// Reference server for the Envoy parity benchmark (bench/parity/run.ts): go-control-plane used
// as a library (snapshot cache + pkg/server/v3), serving the shape of go-control-plane's own
// integration test (pkg/test/main): per version v, C EDS clusters cluster-v-<i>, H HTTP
// listeners listener-<n> on 127.0.0.1:base+n whose RDS route route-v-<port> sends "/" to a
// cluster, and T TCP listeners (tcp_proxy to a cluster), all in the config sources of the mode:
//
//	ads        SotW ADS (ordered ADS, snapshot cache with ads=true, as the integration test)
//	xds        SotW, one gRPC stream per type (CDS/EDS/LDS/RDS services)
//	delta      incremental, one gRPC stream per type
//	delta-ads  incremental ADS
//
// To make each version visible in the data plane (the integration test only checks for 200s),
// version v's clusters have their endpoint on 127.0.0.1:upstream-base+v (an upstream that answers
// "v<v>") and its routes add the response header "x-version: v<v>".
// The same resources as bench/parity/weft-parity-server.ts.
//
// stdin:  "set <n>"  builds version v<n> and calls SetSnapshot; prints
//
//	        "set <n> <unix-nanos> <build+set-µs>": the time SetSnapshot returned, and how long
//	        building the snapshot (incl. Consistent()) and setting it took.
//	"nacks"    prints "nacks <count>" (requests carrying error_detail seen so far).
//
// stdout: "ready" once listening. Exits on SIGTERM/SIGINT or when stdin closes.
//
//	bench/go/bin/parityserver -port 18000 -mode ads -clusters 4 -http 2 -tcp 2 -base 9000 -upstream-base 18100
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/config"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

const xdsCluster = "xds_cluster"

// allNodes serves one snapshot to every node.
type allNodes struct{}

func (allNodes) ID(*core.Node) string { return "parity" }

// configSource is where clusters fetch endpoints and listeners fetch routes, per mode.
func configSource(mode string) *core.ConfigSource {
	switch mode {
	case "ads", "delta-ads":
		return &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}, ResourceApiVersion: core.ApiVersion_V3}
	case "xds", "delta":
		apiType := core.ApiConfigSource_GRPC
		if mode == "delta" {
			apiType = core.ApiConfigSource_DELTA_GRPC
		}
		return &core.ConfigSource{
			ResourceApiVersion: core.ApiVersion_V3,
			ConfigSourceSpecifier: &core.ConfigSource_ApiConfigSource{ApiConfigSource: &core.ApiConfigSource{
				ApiType: apiType, TransportApiVersion: core.ApiVersion_V3, SetNodeOnFirstMessageOnly: true,
				GrpcServices: []*core.GrpcService{{TargetSpecifier: &core.GrpcService_EnvoyGrpc_{EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: xdsCluster}}}},
			}},
		}
	}
	log.Fatalf("unknown mode %q (ads, xds, delta, delta-ads)", mode)
	return nil
}

func sockAddr(port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Protocol: core.SocketAddress_TCP, Address: "127.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
	}}}
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		log.Fatal(err)
	}
	return a
}

type fixture struct {
	mode                 string
	clusters, http, tcpN int
	base, upstreamBase   uint32
	source               *core.ConfigSource
	routerAny            *anypb.Any
}

func (f *fixture) snapshot(n int) *cachev3.Snapshot {
	version := fmt.Sprintf("v%d", n)
	upstream := f.upstreamBase + uint32(n)
	var cds, eds, lds, rds []types.Resource
	names := make([]string, f.clusters)
	for i := 0; i < f.clusters; i++ {
		name := fmt.Sprintf("cluster-%s-%d", version, i)
		names[i] = name
		cds = append(cds, &cluster.Cluster{
			Name:                 name,
			ConnectTimeout:       durationpb.New(5 * time.Second),
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
			EdsClusterConfig:     &cluster.Cluster_EdsClusterConfig{EdsConfig: f.source},
		})
		eds = append(eds, &endpoint.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpoint.LocalityLbEndpoints{{
			LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: sockAddr(upstream)}}}},
		}}})
	}
	port := f.base
	for i := 0; i < f.http; i++ {
		lname := fmt.Sprintf("listener-%d", port-f.base)
		rname := fmt.Sprintf("route-%s-%d", version, port)
		rds = append(rds, &route.RouteConfiguration{
			Name: rname,
			VirtualHosts: []*route.VirtualHost{{
				Name: rname, Domains: []string{"*"},
				Routes: []*route.Route{{
					Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
					Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: names[i%len(names)]}}},
					ResponseHeadersToAdd: []*core.HeaderValueOption{{
						Header:       &core.HeaderValue{Key: "x-version", Value: version},
						AppendAction: core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
					}},
				}},
			}},
		})
		manager := &hcm.HttpConnectionManager{
			CodecType:      hcm.HttpConnectionManager_AUTO,
			StatPrefix:     "http",
			RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{RouteConfigName: rname, ConfigSource: f.source}},
			HttpFilters:    []*hcm.HttpFilter{{Name: "http-router", ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: f.routerAny}}},
		}
		lds = append(lds, &listener.Listener{
			Name: lname, Address: sockAddr(port),
			FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
				Name: "http_connection_manager", ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(manager)},
			}}}},
		})
		port++
	}
	for i := 0; i < f.tcpN; i++ {
		lname := fmt.Sprintf("listener-%d", port-f.base)
		proxy := &tcp.TcpProxy{StatPrefix: "tcp", ClusterSpecifier: &tcp.TcpProxy_Cluster{Cluster: names[i%len(names)]}}
		lds = append(lds, &listener.Listener{
			Name: lname, Address: sockAddr(port),
			FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
				Name: "tcp-proxy", ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(proxy)},
			}}}},
		})
		port++
	}
	snap, err := cachev3.NewSnapshot(version, map[resource.Type][]types.Resource{
		resource.ClusterType: cds, resource.EndpointType: eds, resource.ListenerType: lds, resource.RouteType: rds,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := snap.Consistent(); err != nil {
		log.Fatalf("snapshot %s inconsistent: %v", version, err)
	}
	return snap
}

// out serializes writes to stdout (lines are the protocol).
var outMu sync.Mutex

func say(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func main() {
	port := flag.Int("port", 18000, "xDS port")
	mode := flag.String("mode", "ads", "ads, xds, delta or delta-ads")
	clusters := flag.Int("clusters", 4, "clusters per version")
	httpN := flag.Int("http", 2, "HTTP listeners (each with its RDS route)")
	tcpN := flag.Int("tcp", 2, "TCP listeners")
	base := flag.Int("base", 9000, "first listener port")
	upstreamBase := flag.Int("upstream-base", 18100, "upstream port of version 0 (version n: +n)")
	flag.Parse()
	if *clusters < 1 {
		log.Fatal("-clusters must be >= 1")
	}

	f := &fixture{mode: *mode, clusters: *clusters, http: *httpN, tcpN: *tcpN, base: uint32(*base), upstreamBase: uint32(*upstreamBase),
		source: configSource(*mode), routerAny: mustAny(&router.Router{})}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// As pkg/test/main: the cache waits for all named resources only in (SotW) ADS mode, and
	// only that mode orders ADS responses.
	cache := cachev3.NewSnapshotCache(*mode == "ads", allNodes{}, nil)
	var nacks atomic.Int64
	cb := &serverv3.CallbackFuncs{
		StreamRequestFunc: func(_ int64, r *discovery.DiscoveryRequest) error {
			if r.GetErrorDetail() != nil {
				nacks.Add(1)
				fmt.Fprintf(os.Stderr, "NACK %s version %s: %s\n", r.GetTypeUrl(), r.GetVersionInfo(), r.GetErrorDetail().GetMessage())
			}
			return nil
		},
		StreamDeltaRequestFunc: func(_ int64, r *discovery.DeltaDiscoveryRequest) error {
			if r.GetErrorDetail() != nil {
				nacks.Add(1)
				fmt.Fprintf(os.Stderr, "NACK %s: %s\n", r.GetTypeUrl(), r.GetErrorDetail().GetMessage())
			}
			return nil
		},
	}
	var opts []config.XDSOption
	if *mode == "ads" {
		opts = append(opts, sotw.WithOrderedADS())
	}
	srv := serverv3.NewServer(ctx, cache, cb, opts...)
	gs := grpc.NewServer(
		grpc.MaxConcurrentStreams(1_000_000),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 5 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, srv)
	clusterservice.RegisterClusterDiscoveryServiceServer(gs, srv)
	endpointservice.RegisterEndpointDiscoveryServiceServer(gs, srv)
	listenerservice.RegisterListenerDiscoveryServiceServer(gs, srv)
	routeservice.RegisterRouteDiscoveryServiceServer(gs, srv)
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
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			switch {
			case len(fields) == 2 && fields[0] == "set":
				n, err := strconv.Atoi(fields[1])
				if err != nil || n < 0 {
					log.Printf("bad command %q", sc.Text())
					continue
				}
				started := time.Now()
				snap := f.snapshot(n)
				if err := cache.SetSnapshot(ctx, "parity", snap); err != nil {
					log.Fatalf("SetSnapshot v%d: %v", n, err)
				}
				at := time.Now()
				say("set %d %d %d", n, at.UnixNano(), at.Sub(started).Microseconds())
			case len(fields) == 1 && fields[0] == "nacks":
				say("nacks %d", nacks.Load())
			default:
				log.Printf("unknown command %q", sc.Text())
			}
		}
		// stdin closed: the orchestrator is gone.
		gs.Stop()
	}()
	say("ready")
	if err := gs.Serve(lis); err != nil {
		log.Fatal(err)
	}
}
