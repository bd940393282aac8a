package main

import (
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

func roundTrip(t *testing.T, in, out proto.Message) {
	t.Helper()
	b, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := newResponseCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("decoded %v, want %v", out, in)
	}
}

func TestResponseCodecSotw(t *testing.T) {
	res := []*anypb.Any{{TypeUrl: cdsType, Value: []byte{10, 3, 'a', 'b', 'c'}}, {TypeUrl: cdsType}, {Value: []byte{1}}}
	roundTrip(t, &discovery.DiscoveryResponse{VersionInfo: "v1", Resources: res, TypeUrl: cdsType, Nonce: "_1", ControlPlane: &core.ControlPlane{Identifier: "weft"}}, &discovery.DiscoveryResponse{})
	roundTrip(t, &discovery.DiscoveryResponse{}, &discovery.DiscoveryResponse{})
	// A field loadgen does not read (canary): the generic unmarshal, same result.
	roundTrip(t, &discovery.DiscoveryResponse{VersionInfo: "v1", Resources: res, Canary: true}, &discovery.DiscoveryResponse{})
}

func TestResponseCodecDelta(t *testing.T) {
	res := []*discovery.Resource{{Name: "a", Version: "1", Resource: &anypb.Any{TypeUrl: edsType, Value: []byte{10, 1, 'a'}}}, {Name: "b"}}
	roundTrip(t, &discovery.DeltaDiscoveryResponse{SystemVersionInfo: "v", Resources: res, TypeUrl: edsType, Nonce: "n", RemovedResources: []string{"x", ""}, ControlPlane: &core.ControlPlane{Identifier: "weft"}}, &discovery.DeltaDiscoveryResponse{})
	// A resource with a TTL: the generic unmarshal.
	ttl := []*discovery.Resource{{Name: "a", Ttl: durationpb.New(5)}}
	roundTrip(t, &discovery.DeltaDiscoveryResponse{Resources: ttl}, &discovery.DeltaDiscoveryResponse{})
}
