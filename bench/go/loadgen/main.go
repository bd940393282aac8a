// Load generator for the scale benchmarks: K simulated ADS clients that behave like Envoy on
// one stream each (SotW or delta): wildcard CDS, then EDS for the clusters it got (requested
// before the CDS ACK, as Envoy does); wildcard LDS, then RDS for the route names its listeners
// use; every response ACKed. A client is "synced" once it has ACKed CDS, LDS, and EDS/RDS
// responses covering every name it asked for. The same binary drives every server under test.
//
// Prints one JSON line when every client is synced (or -timeout passes), then keeps the
// streams open for -hold (for memory measurement) and exits.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
)

const (
	cdsType = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	edsType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	ldsType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	rdsType = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
)

type result struct {
	Clients    int     `json:"clients"`
	Mode       string  `json:"mode"`
	Synced     int     `json:"synced"`
	AllAckedMs float64 `json:"allAckedMs"`
	P50Ms      float64 `json:"p50Ms"`
	P99Ms      float64 `json:"p99Ms"`
	MaxMs      float64 `json:"maxMs"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"firstError,omitempty"`
}

// typeState is what one client holds for one resource type.
type typeState struct {
	names     map[string]bool   // names subscribed (EDS/RDS); nil for wildcard types
	have      map[string]string // name -> version held
	acked     bool              // a response was ACKed since the last subscription change
	lastNonce string
	version   string
}

type client struct {
	id     int
	mode   string
	start  time.Time
	syncAt time.Duration
	synced bool
	types  map[string]*typeState
	onSync func(*client)
}

var (
	errCount atomic.Int64
	firstErr atomic.Value
)

func recordErr(err error) {
	if errCount.Add(1) == 1 {
		firstErr.Store(err.Error())
	}
}

func (c *client) node() *core.Node {
	return &core.Node{Id: fmt.Sprintf("loadgen-%d", c.id), Cluster: "bench", UserAgentName: "envoy"}
}

func (c *client) st(t string) *typeState {
	s := c.types[t]
	if s == nil {
		s = &typeState{have: map[string]string{}}
		c.types[t] = s
	}
	return s
}

// referenced returns the EDS names (from clusters) or RDS names (from listeners) in resources.
func referenced(typeURL string, res []*anypb.Any) []string {
	var out []string
	for _, a := range res {
		switch typeURL {
		case cdsType:
			var cl cluster.Cluster
			if err := a.UnmarshalTo(&cl); err != nil {
				recordErr(err)
				continue
			}
			if cl.GetType() == cluster.Cluster_EDS {
				n := cl.GetEdsClusterConfig().GetServiceName()
				if n == "" {
					n = cl.GetName()
				}
				out = append(out, n)
			}
		case ldsType:
			var l listener.Listener
			if err := a.UnmarshalTo(&l); err != nil {
				recordErr(err)
				continue
			}
			for _, fc := range l.GetFilterChains() {
				for _, f := range fc.GetFilters() {
					tc := f.GetTypedConfig()
					if tc == nil {
						continue
					}
					var m hcm.HttpConnectionManager
					if err := tc.UnmarshalTo(&m); err != nil {
						continue
					}
					if r := m.GetRds(); r != nil {
						out = append(out, r.GetRouteConfigName())
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// decodeName reads field 1 (length-delimited string) from an encoded message.
func decodeName(b []byte) string {
	for i := 0; i < len(b); {
		key, n := uvarint(b[i:])
		if n <= 0 {
			return ""
		}
		i += n
		field, wt := key>>3, key&7
		switch wt {
		case 0:
			_, n = uvarint(b[i:])
			i += n
		case 1:
			i += 8
		case 5:
			i += 4
		case 2:
			l, n := uvarint(b[i:])
			i += n
			if field == 1 {
				return string(b[i : i+int(l)])
			}
			i += int(l)
		default:
			return ""
		}
	}
	return ""
}

func uvarint(b []byte) (uint64, int) {
	var x uint64
	var s uint
	for i, c := range b {
		if i == 10 {
			return 0, -1
		}
		if c < 0x80 {
			return x | uint64(c)<<s, i + 1
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, 0
}

func (c *client) checkSynced() {
	if c.synced {
		return
	}
	for _, t := range []string{cdsType, ldsType, edsType, rdsType} {
		s := c.types[t]
		if s == nil || !s.acked {
			return
		}
		for n := range s.names {
			if _, ok := s.have[n]; !ok {
				return
			}
		}
	}
	c.synced = true
	c.syncAt = time.Since(c.start)
	c.onSync(c)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sameSet(a map[string]bool, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, n := range b {
		if !a[n] {
			return false
		}
	}
	return true
}

func (c *client) runSotw(ctx context.Context, conn *grpc.ClientConn) error {
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	node := c.node()
	send := func(t string, names []string, version, nonce string) error {
		return stream.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: t, ResourceNames: names, VersionInfo: version, ResponseNonce: nonce})
	}
	c.st(cdsType)
	c.st(ldsType)
	if err := send(cdsType, nil, "", ""); err != nil {
		return err
	}
	if err := send(ldsType, nil, "", ""); err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		t := resp.GetTypeUrl()
		s := c.st(t)
		// SotW: the response is the whole state for this type (for EDS/RDS: of the names asked).
		s.have = map[string]string{}
		for _, a := range resp.GetResources() {
			s.have[decodeName(a.GetValue())] = resp.GetVersionInfo()
		}
		// Like Envoy: subscribe the dependent type before ACKing the parent.
		if t == cdsType || t == ldsType {
			dep := edsType
			if t == ldsType {
				dep = rdsType
			}
			names := referenced(t, resp.GetResources())
			ds := c.st(dep)
			if ds.names == nil || !sameSet(ds.names, names) {
				ds.names = map[string]bool{}
				for _, n := range names {
					ds.names[n] = true
				}
				ds.acked = false
				if err := send(dep, names, ds.version, ds.lastNonce); err != nil {
					return err
				}
			}
		}
		var names []string
		if s.names != nil {
			names = keys(s.names)
		}
		s.version, s.lastNonce = resp.GetVersionInfo(), resp.GetNonce()
		if err := send(t, names, s.version, s.lastNonce); err != nil {
			return err
		}
		s.acked = true
		c.checkSynced()
	}
}

func (c *client) runDelta(ctx context.Context, conn *grpc.ClientConn) error {
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		return err
	}
	node := c.node()
	c.st(cdsType)
	c.st(ldsType)
	for _, t := range []string{cdsType, ldsType} {
		// Initial request: node, wildcard, and whatever this client already holds.
		req := &discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: t, ResourceNamesSubscribe: []string{"*"}}
		if len(c.types[t].have) > 0 {
			req.InitialResourceVersions = c.types[t].have
		}
		if err := stream.Send(req); err != nil {
			return err
		}
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		t := resp.GetTypeUrl()
		s := c.st(t)
		for _, r := range resp.GetResources() {
			s.have[r.GetName()] = r.GetVersion()
		}
		for _, n := range resp.GetRemovedResources() {
			delete(s.have, n)
		}
		if t == cdsType || t == ldsType {
			dep := edsType
			if t == ldsType {
				dep = rdsType
			}
			var res []*anypb.Any
			for _, r := range resp.GetResources() {
				res = append(res, r.GetResource())
			}
			ds := c.st(dep)
			if ds.names == nil {
				ds.names = map[string]bool{}
			}
			var sub []string
			for _, n := range referenced(t, res) {
				if !ds.names[n] {
					ds.names[n] = true
					sub = append(sub, n)
				}
			}
			if len(sub) > 0 {
				ds.acked = false
				if err := stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: dep, ResourceNamesSubscribe: sub}); err != nil {
					return err
				}
			}
		}
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: t, ResponseNonce: resp.GetNonce()}); err != nil {
			return err
		}
		s.acked = true
		c.checkSynced()
	}
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func main() {
	target := flag.String("target", "127.0.0.1:18000", "xDS server host:port")
	clients := flag.Int("clients", 100, "simulated clients")
	mode := flag.String("mode", "sotw", "sotw|delta")
	ramp := flag.Duration("ramp", 0, "spread client starts over this duration")
	hold := flag.Duration("hold", 0, "keep clients connected this long after the result line")
	timeout := flag.Duration("timeout", 120*time.Second, "give up waiting for sync after this")
	perConn := flag.Int("per-conn", 100, "streams per gRPC connection")
	flag.Parse()
	if *mode != "sotw" && *mode != "delta" {
		fmt.Fprintln(os.Stderr, "-mode must be sotw or delta")
		os.Exit(2)
	}

	nConns := (*clients + *perConn - 1) / *perConn
	conns := make([]*grpc.ClientConn, nConns)
	for i := range conns {
		cc, err := grpc.NewClient(*target,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cc.Connect()
		conns[i] = cc
	}
	// Connections are dialled before the clock starts: the storm measured is one of streams.
	for _, cc := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for s := cc.GetState(); s.String() != "READY"; s = cc.GetState() {
			if !cc.WaitForStateChange(ctx, s) {
				break
			}
		}
		cancel()
	}

	var mu sync.Mutex
	var lat []float64
	done := make(chan struct{})
	var syncedN int
	ctx, cancel := context.WithCancel(context.Background())
	t0 := time.Now()
	var lastSync time.Duration
	onSync := func(c *client) {
		mu.Lock()
		lat = append(lat, float64(c.syncAt.Microseconds())/1000)
		syncedN++
		if d := time.Since(t0); d > lastSync {
			lastSync = d
		}
		if syncedN == *clients {
			close(done)
		}
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for i := 0; i < *clients; i++ {
		var delay time.Duration
		if *ramp > 0 && *clients > 1 {
			delay = time.Duration(int64(*ramp) * int64(i) / int64(*clients-1))
		}
		c := &client{id: i, mode: *mode, types: map[string]*typeState{}, onSync: onSync}
		conn := conns[i%nConns]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if delay > 0 {
				time.Sleep(delay)
			}
			c.start = time.Now()
			var err error
			if *mode == "sotw" {
				err = c.runSotw(ctx, conn)
			} else {
				err = c.runDelta(ctx, conn)
			}
			if err != nil && ctx.Err() == nil {
				recordErr(fmt.Errorf("client %d: %w", i, err))
			}
		}()
	}
	select {
	case <-done:
	case <-time.After(*timeout):
	}
	mu.Lock()
	sorted := append([]float64(nil), lat...)
	r := result{Clients: *clients, Mode: *mode, Synced: syncedN, AllAckedMs: float64(lastSync.Microseconds()) / 1000, Errors: errCount.Load()}
	if syncedN < *clients {
		r.AllAckedMs = -1
	}
	mu.Unlock()
	sort.Float64s(sorted)
	r.P50Ms, r.P99Ms = percentile(sorted, 50), percentile(sorted, 99)
	if len(sorted) > 0 {
		r.MaxMs = sorted[len(sorted)-1]
	}
	if v, ok := firstErr.Load().(string); ok {
		r.FirstError = v
	}
	line, _ := json.Marshal(r)
	fmt.Println(string(line))
	if *hold > 0 {
		time.Sleep(*hold)
	}
	cancel()
	for _, cc := range conns {
		cc.Close()
	}
	if syncedN < *clients {
		os.Exit(3)
	}
}
