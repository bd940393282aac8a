package main

import (
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestReferencedClusters(t *testing.T) {
	ads := &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}}
	var res []*anypb.Any
	for i, c := range []*cluster.Cluster{
		{Name: "a", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS}, EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{EdsConfig: ads}},
		{Name: "b", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS}, EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{EdsConfig: ads, ServiceName: "outbound|80||b.ns.svc"}},
		{Name: "c", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STRICT_DNS}},
		{Name: "d"}, // STATIC by default
	} {
		c.ConnectTimeout = durationpb.New(time.Duration(i+1) * time.Second)
		res = append(res, mustAny(t, c))
	}
	got := referenced(cdsType, res)
	want := []string{"a", "outbound|80||b.ns.svc"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestReferencedListeners(t *testing.T) {
	manager := func(route string) *anypb.Any {
		return mustAny(t, &hcm.HttpConnectionManager{
			StatPrefix:     route,
			RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{RouteConfigName: route}},
			HttpFilters:    []*hcm.HttpFilter{{Name: "router", ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &router.Router{})}}},
		})
	}
	filter := func(a *anypb.Any) *listener.Filter {
		return &listener.Filter{Name: "f", ConfigType: &listener.Filter_TypedConfig{TypedConfig: a}}
	}
	l1 := &listener.Listener{Name: "l1", FilterChains: []*listener.FilterChain{
		{Filters: []*listener.Filter{filter(manager("r1"))}},
		{Filters: []*listener.Filter{filter(mustAny(t, &tcp.TcpProxy{StatPrefix: "tcp"})), filter(manager("r2"))}},
	}, DefaultFilterChain: &listener.FilterChain{Filters: []*listener.Filter{filter(manager("r0"))}}}
	l2 := &listener.Listener{Name: "l2", FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{filter(mustAny(t, &hcm.HttpConnectionManager{
		RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{},
	}))}}}}
	got := referenced(ldsType, []*anypb.Any{mustAny(t, l1), mustAny(t, l2)})
	want := []string{"r0", "r1", "r2"}
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if errCount.Load() != 0 {
		t.Fatalf("errors recorded: %v", firstErr.Load())
	}
}

func BenchmarkReferencedClusters(b *testing.B) {
	ads := &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}}
	var res []*anypb.Any
	for i := 0; i < 1000; i++ {
		a, _ := anypb.New(&cluster.Cluster{Name: fmt.Sprintf("outbound|80||svc-%d.ns.svc.cluster.local", i), ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
			EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{EdsConfig: ads}, ConnectTimeout: durationpb.New(time.Second)})
		res = append(res, a)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		referenced(cdsType, res)
	}
}
