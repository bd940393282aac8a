package main

import (
	"sort"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"
)

// Field numbers used to find what a client subscribes to next, read straight from the encoded
// resources (decoding whole Clusters and Listeners was half of the loadgen's CPU at 2000 clients).
const (
	clusterName             = 1 // Cluster.name
	clusterType             = 2 // Cluster.type (oneof cluster_discovery_type)
	clusterEdsConfig        = 3 // Cluster.eds_cluster_config
	edsServiceName          = 2 // Cluster.EdsClusterConfig.service_name
	clusterTypeEDS          = 3 // Cluster.DiscoveryType EDS
	listenerFilterChains    = 3 // Listener.filter_chains
	listenerDefaultChain    = 25
	filterChainFilters      = 3 // FilterChain.filters
	filterTypedConfig       = 4 // Filter.typed_config (Any)
	anyTypeURL              = 1
	anyValue                = 2
	hcmRds                  = 3 // HttpConnectionManager.rds
	rdsRouteConfigName      = 2 // Rds.route_config_name
	httpConnectionManagerV3 = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)

// eachField calls fn for every field of an encoded message (v: bytes of a length-delimited
// field, u: value of a varint field). Returns false on malformed input.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, u uint64)) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			u, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return false
			}
			fn(num, typ, nil, u)
			b = b[m:]
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return false
			}
			fn(num, typ, v, 0)
			b = b[m:]
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return false
			}
			b = b[m:]
		}
	}
	return true
}

// referenced returns the EDS names (from EDS clusters) or RDS names (from listeners' HTTP
// connection managers) in resources, sorted.
func referenced(typeURL string, res []*anypb.Any) []string {
	var out []string
	for _, a := range res {
		ok := true
		switch typeURL {
		case cdsType:
			var name, service []byte
			var typ uint64
			ok = eachField(a.GetValue(), func(num protowire.Number, wt protowire.Type, v []byte, u uint64) {
				switch {
				case num == clusterName && wt == protowire.BytesType:
					name = v
				case num == clusterType && wt == protowire.VarintType:
					typ = u
				case num == clusterEdsConfig && wt == protowire.BytesType:
					eachField(v, func(num protowire.Number, wt protowire.Type, v []byte, _ uint64) {
						if num == edsServiceName && wt == protowire.BytesType {
							service = v
						}
					})
				}
			})
			if typ == clusterTypeEDS {
				if len(service) == 0 {
					service = name
				}
				out = append(out, internBytes(service))
			}
		case ldsType:
			ok = eachField(a.GetValue(), func(num protowire.Number, wt protowire.Type, chain []byte, _ uint64) {
				if (num != listenerFilterChains && num != listenerDefaultChain) || wt != protowire.BytesType {
					return
				}
				eachField(chain, func(num protowire.Number, wt protowire.Type, filter []byte, _ uint64) {
					if num != filterChainFilters || wt != protowire.BytesType {
						return
					}
					eachField(filter, func(num protowire.Number, wt protowire.Type, tc []byte, _ uint64) {
						if num != filterTypedConfig || wt != protowire.BytesType {
							return
						}
						var url, value []byte
						eachField(tc, func(num protowire.Number, wt protowire.Type, v []byte, _ uint64) {
							if num == anyTypeURL && wt == protowire.BytesType {
								url = v
							} else if num == anyValue && wt == protowire.BytesType {
								value = v
							}
						})
						if string(url) != httpConnectionManagerV3 {
							return
						}
						eachField(value, func(num protowire.Number, wt protowire.Type, rds []byte, _ uint64) {
							if num != hcmRds || wt != protowire.BytesType {
								return
							}
							eachField(rds, func(num protowire.Number, wt protowire.Type, v []byte, _ uint64) {
								if num == rdsRouteConfigName && wt == protowire.BytesType {
									out = append(out, internBytes(v))
								}
							})
						})
					})
				})
			})
		}
		if !ok {
			recordErr(errMalformed(typeURL))
		}
	}
	sort.Strings(out)
	return out
}

type errMalformed string

func (e errMalformed) Error() string { return "malformed " + string(e) + " resource" }
