// Load generator for the scale benchmarks: K simulated ADS clients that behave like Envoy on
// one stream each (SotW or delta): wildcard CDS, then EDS for the clusters it got (requested
// before the CDS ACK, as Envoy does); wildcard LDS, then RDS for the route names its listeners
// use; every response ACKed. A client is "synced" once it has ACKed CDS, LDS, and EDS/RDS
// responses covering every name it asked for. The same binary drives every server under test.
//
// Prints one JSON line when every client is synced (or -timeout passes), then keeps the
// streams open for -hold (for memory measurement) and exits. With -watch it instead reads
// commands from stdin after that line (mark, stats, reconnect, nack; see README.md here) until
// stdin closes or -hold passes.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	cdsType = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	edsType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	ldsType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	rdsType = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	// VHDS: delta only. A route configuration with `vhds` (field 9) gets its virtual hosts as
	// VirtualHost resources named "<route configuration>/<virtual host>".
	vhdsType = "type.googleapis.com/envoy.config.route.v3.VirtualHost"
	sdsType  = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
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
	// Streams re-opened after a failure, as Envoy would (-retry-streams).
	StreamRetries int64 `json:"streamRetries"`
}

var (
	errCount atomic.Int64
	// Streams re-opened after a failure (-retry-streams).
	streamRetries atomic.Int64
	retryStreams  = flag.Bool("retry-streams", true, "re-open a failed stream after a backoff, as Envoy does (errors are still counted)")
	contentHash   = flag.Bool("content", false, "hash every resource body received, so marks can ask for a changed body (\"changed\": true)")
	firstErr      atomic.Value
)

func recordErr(err error) {
	if errCount.Add(1) == 1 {
		firstErr.Store(err.Error())
	}
}

// decodeNameBytes reads field 1 (length-delimited: the name of a Cluster, Listener,
// RouteConfiguration, ClusterLoadAssignment) from an encoded message, without decoding it.
func decodeNameBytes(b []byte) []byte {
	for i := 0; i < len(b); {
		key, n := uvarint(b[i:])
		if n <= 0 {
			return nil
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
			if i+int(l) > len(b) {
				return nil
			}
			if field == 1 {
				return b[i : i+int(l)]
			}
			i += int(l)
		default:
			return nil
		}
	}
	return nil
}

// hasField reports whether an encoded message has top-level field `want` (any wire type),
// without decoding it (e.g. a RouteConfiguration's `vhds`, field 9).
func hasField(b []byte, want uint64) bool {
	for i := 0; i < len(b); {
		key, n := uvarint(b[i:])
		if n <= 0 {
			return false
		}
		i += n
		field, wt := key>>3, key&7
		if field == want {
			return true
		}
		switch wt {
		case 0:
			_, n = uvarint(b[i:])
			if n <= 0 {
				return false
			}
			i += n
		case 1:
			i += 8
		case 5:
			i += 4
		case 2:
			l, n := uvarint(b[i:])
			if n <= 0 {
				return false
			}
			i += n + int(l)
		default:
			return false
		}
	}
	return false
}

// routeConfigurationOf: the route configuration a VirtualHost resource belongs to (the part
// before the last "/", as Envoy matches VHDS names).
func routeConfigurationOf(name string) string {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ""
	}
	return name[:i]
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
	hold := flag.Duration("hold", 0, "keep clients connected this long after the result line (with -watch: at most this long)")
	timeout := flag.Duration("timeout", 120*time.Second, "give up waiting for sync after this")
	perConn := flag.Int("per-conn", 100, "streams per gRPC connection")
	nodeMeta := flag.String("node-meta", "", "JSON array of nodes {id, cluster, metadata, locality}; client i uses entry i % len")
	watch := flag.Bool("watch", false, "after the result line, read commands from stdin (mark, stats, reconnect, nack) until it closes")
	quiet := flag.Duration("resync-quiet", 300*time.Millisecond, "delta reconnect: a client that kept its state counts as resynced after this long without a response")
	initOrder := flag.String("init-order", "parallel", "parallel: request CDS and LDS at once; envoy: request LDS once clusters are warm (CDS ACKed, all EDS received), as Envoy does")
	cpuProfile := flag.String("cpu-profile", "", "write a pprof CPU profile of the loadgen to this file")
	maxSyncing := flag.Int("max-syncing", 0, "at most this many clients between their start and their initial sync (a rolling fleet); 0: no limit")
	flag.Parse()
	if *mode != "sotw" && *mode != "delta" {
		fmt.Fprintln(os.Stderr, "-mode must be sotw or delta")
		os.Exit(2)
	}
	if *initOrder != "parallel" && *initOrder != "envoy" {
		fmt.Fprintln(os.Stderr, "-init-order must be parallel or envoy")
		os.Exit(2)
	}
	var nodes []*core.Node
	if *nodeMeta != "" {
		var err error
		if nodes, err = loadNodes(*nodeMeta); err != nil {
			fmt.Fprintln(os.Stderr, "-node-meta:", err)
			os.Exit(2)
		}
	}
	stopProfile := func() {}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "-cpu-profile:", err)
			os.Exit(2)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "-cpu-profile:", err)
			os.Exit(2)
		}
		var once sync.Once
		stopProfile = func() {
			once.Do(func() {
				pprof.StopCPUProfile()
				f.Close()
			})
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		go func() {
			s := <-sig
			stopProfile()
			signal.Reset(s.(syscall.Signal))
			syscall.Kill(os.Getpid(), s.(syscall.Signal))
		}()
	}
	exit := func(code int) {
		stopProfile()
		os.Exit(code)
	}

	dial := func() (*grpc.ClientConn, error) {
		return grpc.NewClient(*target,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	}
	nConns := (*clients + *perConn - 1) / *perConn
	conns := make([]*grpc.ClientConn, nConns)
	for i := range conns {
		cc, err := dial()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			exit(1)
		}
		conns[i] = cc
	}
	// Connections are dialled before the clock starts: the storm measured is one of streams.
	waitReady(conns)
	newClient := func(id, nodeIdx int, conn *grpc.ClientConn, onSync func(*client)) *client {
		node := &core.Node{Id: fmt.Sprintf("loadgen-%d", id), Cluster: "bench", UserAgentName: "envoy"}
		if len(nodes) > 0 {
			node = nodes[nodeIdx%len(nodes)]
		}
		return &client{id: id, mode: *mode, envoyOrder: *initOrder == "envoy", node: node, conn: conn, types: map[string]*typeState{}, onSync: onSync}
	}
	// -max-syncing: a client takes a slot before it starts and frees it once synced.
	var slots chan struct{}
	if *maxSyncing > 0 {
		slots = make(chan struct{}, *maxSyncing)
	}

	var mu sync.Mutex
	var lat []float64
	done := make(chan struct{})
	var syncedN int
	ctx, cancel := context.WithCancel(context.Background())
	t0 := time.Now()
	var lastSync time.Duration
	onSync := func(c *client) {
		if slots != nil {
			<-slots
		}
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
	all := make([]*client, *clients)
	var wg sync.WaitGroup
	for i := 0; i < *clients; i++ {
		var delay time.Duration
		if *ramp > 0 && *clients > 1 {
			delay = time.Duration(int64(*ramp) * int64(i) / int64(*clients-1))
		}
		c := newClient(i, i, conns[i%nConns], onSync)
		all[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			if delay > 0 {
				time.Sleep(delay)
			}
			if slots != nil {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
			c.start = time.Now()
			if err := c.run(ctx); err != nil && ctx.Err() == nil {
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
	r := result{Clients: *clients, Mode: *mode, Synced: syncedN, AllAckedMs: float64(lastSync.Microseconds()) / 1000, Errors: errCount.Load(), StreamRetries: streamRetries.Load()}
	if syncedN < *clients {
		r.AllAckedMs = -1
	}
	synced := syncedN
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
	outMu.Lock()
	fmt.Println(string(line))
	outMu.Unlock()
	if *watch {
		w := &watcher{t0: t0, newClient: newClient, dial: dial, perConn: *perConn, ctx: ctx, clients: all, mode: *mode, quiet: *quiet, start: rx.snapshot(), marksByID: map[string]bool{}}
		eof := make(chan struct{})
		go func() {
			w.serve(os.Stdin)
			close(eof)
		}()
		var holdC <-chan time.Time
		if *hold > 0 {
			holdC = time.After(*hold)
		}
		select {
		case <-eof:
			// Outstanding marks and reconnects report before the exit (each is bounded by its timeout).
			w.pending.Wait()
		case <-holdC:
		}
	} else if *hold > 0 {
		time.Sleep(*hold)
	}
	cancel()
	for _, cc := range conns {
		cc.Close()
	}
	if synced < *clients {
		exit(3)
	}
	stopProfile()
}
