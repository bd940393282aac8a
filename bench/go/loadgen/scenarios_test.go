package main

import (
	"os"
	"path/filepath"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/proto"
)

func claWith(addr string) []byte {
	b, _ := proto.Marshal(&endpoint.ClusterLoadAssignment{ClusterName: "c", Endpoints: []*endpoint.LocalityLbEndpoints{{LbEndpoints: []*endpoint.LbEndpoint{{
		HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{Address: addr}}}}},
	}}}}})
	return b
}

func TestChurnNumber(t *testing.T) {
	if k, ok := churnNumber(claWith("10.202.1.7")); !ok || k != 263 {
		t.Fatalf("10.202.1.7: got %d %v, want 263", k, ok)
	}
	for _, a := range []string{"10.200.0.1", "not-an-ip", "::1"} {
		if _, ok := churnNumber(claWith(a)); ok {
			t.Fatalf("%s read as a churn number", a)
		}
	}
}

func TestChurnLatenciesCountSkippedStatesAsDelivered(t *testing.T) {
	ms := func(x int64) int64 { return x * 1e6 }
	writes := map[int]float64{1: 1000, 2: 1100, 3: 1200}
	seen := []map[int]int64{
		{1: ms(1050), 3: ms(1300)}, // 2 skipped: delivered with 3
		{3: ms(1250)},              // 1 and 2 skipped
		{1: ms(1010)},              // 2 and 3 never delivered
	}
	r := churnLatencies(seen, writes)
	if r.Latencies != 7 || r.Undelivered != 2 {
		t.Fatalf("latencies %d undelivered %d, want 7 and 2", r.Latencies, r.Undelivered)
	}
	if r.Max != 250 { // write 1 at 1000 reached the second client at 1250
		t.Fatalf("max %v, want 250", r.Max)
	}
}

func TestContentChangesNamesOnlyChangedBodies(t *testing.T) {
	*contentHash = true
	defer func() { *contentHash = false }()
	activeMarks.Store(1)
	defer activeMarks.Store(0)
	c := &client{types: map[string]*typeState{}}
	s := c.st(rdsType)
	bodies := [][]byte{[]byte("a"), []byte("b")}
	body := func(i int) []byte { return bodies[i] }
	if ch := s.contentChanges([]string{"x", "y"}, body, true); len(ch) != 2 {
		t.Fatalf("first response: %v, want both new", ch)
	}
	if ch := s.contentChanges([]string{"x", "y"}, body, true); ch != nil {
		t.Fatalf("same bodies again: %v, want nothing changed", ch)
	}
	bodies[1] = []byte("b2")
	if ch := s.contentChanges([]string{"x", "y"}, body, true); len(ch) != 1 || !ch["y"] {
		t.Fatalf("y changed: got %v", ch)
	}
	// A wildcard response without x forgets x: x coming back counts as changed.
	s.contentChanges([]string{"y"}, func(int) []byte { return bodies[1] }, true)
	if ch := s.contentChanges([]string{"x"}, body, false); !ch["x"] {
		t.Fatalf("x back after removal: got %v", ch)
	}
}

func TestLoadNodesKeepsMapMetadata(t *testing.T) {
	f := filepath.Join(t.TempDir(), "nodes.json")
	os.WriteFile(f, []byte(`[{"id":"sidecar~10.0.0.1~p.ns~ns.svc.cluster.local","cluster":"a.ns","metadata":{"NAMESPACE":"ns","LABELS":{"app":"a","version":"v1"}}}]`), 0o644)
	nodes, err := loadNodes(f)
	if err != nil {
		t.Fatal(err)
	}
	md := nodes[0].GetMetadata().GetFields()
	if md["NAMESPACE"].GetStringValue() != "ns" || md["LABELS"].GetStructValue().GetFields()["version"].GetStringValue() != "v1" {
		t.Fatalf("metadata %v", md)
	}
}
