package main

import (
	"encoding/json"
	"fmt"
	"os"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// nodeEntry is one element of the -node-meta file.
type nodeEntry struct {
	ID      string `json:"id"`
	Cluster string `json:"cluster"`
	// Values may be strings or any JSON (Istio's LABELS is a map: istiod rejects it as a string).
	Metadata map[string]any `json:"metadata"`
	Locality *struct {
		Region  string `json:"region"`
		Zone    string `json:"zone"`
		SubZone string `json:"subZone"`
	} `json:"locality"`
}

// loadNodes reads the -node-meta file: a JSON array of node descriptions; client i uses entry
// i % len. Each entry becomes a core.Node (metadata as a Struct: strings stay strings, JSON
// objects become Structs).
func loadNodes(file string) ([]*core.Node, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var entries []nodeEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("%s: expected a JSON array of {id, cluster, metadata, locality}: %w", file, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s: the array is empty", file)
	}
	nodes := make([]*core.Node, len(entries))
	for i, e := range entries {
		if e.ID == "" {
			return nil, fmt.Errorf("%s: entry %d has no id", file, i)
		}
		n := &core.Node{Id: e.ID, Cluster: e.Cluster, UserAgentName: "envoy"}
		if len(e.Metadata) > 0 {
			md, err := structpb.NewStruct(e.Metadata)
			if err != nil {
				return nil, fmt.Errorf("%s: entry %d (%s): metadata: %w", file, i, e.ID, err)
			}
			n.Metadata = md
		}
		if e.Locality != nil {
			n.Locality = &core.Locality{Region: e.Locality.Region, Zone: e.Locality.Zone, SubZone: e.Locality.SubZone}
		}
		nodes[i] = n
	}
	return nodes, nil
}
