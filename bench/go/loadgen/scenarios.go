package main

// The scenario commands of -watch used by the istiod-vs-Weft bench (bench/istiod/run.ts): quiet,
// churn-begin / churn-end, storm. See README.md here for the protocol.

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// churnName is the EDS resource whose first address the churn scenario rewrites (nil: no churn).
var churnName atomic.Pointer[string]

// churnSeen: per client, when it first held each churn number k (unix ns).
type churnSeen struct {
	mu   sync.Mutex
	seen map[int]int64
}

// churnNumber reads the churn number k from an encoded ClusterLoadAssignment whose first endpoint
// has the address 10.202.(k/256).(k%256); false when it has none such.
func churnNumber(b []byte) (int, bool) {
	var cla endpoint.ClusterLoadAssignment
	if err := proto.Unmarshal(b, &cla); err != nil {
		return 0, false
	}
	for _, l := range cla.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			a, err := netip.ParseAddr(e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress())
			if err != nil || !a.Is4() {
				return 0, false
			}
			o := a.As4()
			if o[0] != 10 || o[1] != 202 {
				return 0, false
			}
			return int(o[2])<<8 | int(o[3]), true
		}
	}
	return 0, false
}

// noteChurn: during a churn, the first time this client holds each churn number.
func (c *client) noteChurn(t string, names []string, body func(i int) []byte, at time.Time) {
	name := churnName.Load()
	if name == nil || t != edsType {
		return
	}
	for i, n := range names {
		if n != *name {
			continue
		}
		k, ok := churnNumber(body(i))
		if !ok {
			return
		}
		c.churn.mu.Lock()
		if c.churn.seen != nil {
			if _, had := c.churn.seen[k]; !had {
				c.churn.seen[k] = at.UnixNano()
			}
		}
		c.churn.mu.Unlock()
		return
	}
}

type churnResult struct {
	P50         float64 `json:"p50"`
	P99         float64 `json:"p99"`
	Max         float64 `json:"max"`
	Latencies   int     `json:"latencies"`
	Undelivered int     `json:"undelivered"`
}

// churnLatencies: write k (at writes[k], unix ms) counts as delivered to a client at the first time
// it held any k' >= k (debouncing servers skip states); ms from the write.
func churnLatencies(seen []map[int]int64, writes map[int]float64) churnResult {
	ks := make([]int, 0, len(writes))
	for k := range writes {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	var lat []float64
	undelivered := 0
	for _, s := range seen {
		held := make([]int, 0, len(s))
		for k := range s {
			held = append(held, k)
		}
		sort.Ints(held)
		suffixMin := make([]int64, len(held))
		for i, m := len(held)-1, int64(1<<62); i >= 0; i-- {
			m = min(m, s[held[i]])
			suffixMin[i] = m
		}
		j := 0
		for _, k := range ks {
			for j < len(held) && held[j] < k {
				j++
			}
			if j >= len(held) {
				undelivered++
				continue
			}
			lat = append(lat, float64(suffixMin[j])/1e6-writes[k])
		}
	}
	r := churnResult{Latencies: len(lat), Undelivered: undelivered}
	if len(lat) > 0 {
		sort.Float64s(lat)
		r.P50, r.P99, r.Max = round3(percentile(lat, 50)), round3(percentile(lat, 99)), round3(lat[len(lat)-1])
	}
	return r
}

type stormResult struct {
	Storm     int     `json:"storm"`
	Ms        float64 `json:"ms"` // -1: not all synced in time
	Synced    int     `json:"synced"`
	Retries   int64   `json:"reconnects"`
	Bytes     int64   `json:"bytes"`
	Responses int64   `json:"responses"`
	Requests  int64   `json:"requests"`
}

func (w *watcher) handleScenario(c command, at time.Time) error {
	switch c.Cmd {
	case "quiet":
		quiet := 2 * time.Second
		if c.QuietMs != nil && *c.QuietMs > 0 {
			quiet = time.Duration(*c.QuietMs) * time.Millisecond
		}
		timeout := timeoutOf(c)
		w.pending.Add(1)
		go func() {
			defer w.pending.Done()
			deadline := at.Add(timeout)
			for {
				last := time.Unix(0, lastRxNs.Load())
				if time.Since(last) >= quiet || time.Now().After(deadline) {
					emit(map[string]any{"quiet": time.Since(last) >= quiet, "lastResponseMs": round3(float64(last.Sub(w.t0)) / 1e6), "lastResponseAt": round3(float64(last.UnixNano()) / 1e6)})
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	case "churn-begin":
		if c.Name == "" {
			return fmt.Errorf("churn-begin needs the EDS name whose address churns (name)")
		}
		for _, cl := range w.clients {
			cl.churn.mu.Lock()
			cl.churn.seen = map[int]int64{}
			cl.churn.mu.Unlock()
		}
		name := intern(c.Name)
		churnName.Store(&name)
		emit(map[string]bool{"churning": true})
	case "churn-end":
		if churnName.Load() == nil || len(c.Writes) == 0 {
			return fmt.Errorf("churn-end needs a churn-begin first and writes {k: unix ms}")
		}
		writes := make(map[int]float64, len(c.Writes))
		last := -1
		for ks, t := range c.Writes {
			k, err := strconv.Atoi(ks)
			if err != nil {
				return fmt.Errorf("churn-end: write %q is not a number", ks)
			}
			writes[k] = t
			last = max(last, k)
		}
		timeout := timeoutOf(c)
		w.pending.Add(1)
		go func() {
			defer w.pending.Done()
			deadline := at.Add(timeout)
			holdsLast := func(cl *client) bool {
				cl.churn.mu.Lock()
				defer cl.churn.mu.Unlock()
				for k := range cl.churn.seen {
					if k >= last {
						return true
					}
				}
				return false
			}
			for time.Now().Before(deadline) {
				all := true
				for _, cl := range w.clients {
					if !holdsLast(cl) {
						all = false
						break
					}
				}
				if all {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			churnName.Store(nil)
			seen := make([]map[int]int64, len(w.clients))
			for i, cl := range w.clients {
				cl.churn.mu.Lock()
				seen[i], cl.churn.seen = cl.churn.seen, nil
				cl.churn.mu.Unlock()
			}
			emit(map[string]any{"churn": churnLatencies(seen, writes)})
		}()
	case "storm":
		if c.Count == nil || *c.Count <= 0 {
			return fmt.Errorf("storm needs a positive count")
		}
		timeout := timeoutOf(c)
		w.pending.Add(1)
		go func() {
			defer w.pending.Done()
			emit(w.storm(*c.Count, timeout))
		}()
	}
	return nil
}

// storm starts n more clients at once (identities of the -node-meta entries reused in turn, on
// their own gRPC connections, -per-conn streams each), waits until all are synced or the timeout
// passes, reports, and closes them.
func (w *watcher) storm(n int, timeout time.Duration) stormResult {
	res := stormResult{Storm: n, Ms: -1}
	conns := make([]*grpc.ClientConn, (n+w.perConn-1)/w.perConn)
	defer func() {
		for _, cc := range conns {
			if cc != nil {
				cc.Close()
			}
		}
	}()
	for i := range conns {
		cc, err := w.dial()
		if err != nil {
			recordErr(fmt.Errorf("storm: %w", err))
			return res
		}
		conns[i] = cc
	}
	waitReady(conns)
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	var mu sync.Mutex
	synced := 0
	var last time.Duration
	done := make(chan struct{})
	t0 := time.Now()
	retries0 := streamRetries.Load()
	cs := make([]*client, n)
	for j := range cs {
		cs[j] = w.newClient(len(w.clients)+j, j, conns[j%len(conns)], func(*client) {
			mu.Lock()
			defer mu.Unlock()
			synced++
			last = time.Since(t0)
			if synced == n {
				close(done)
			}
		})
	}
	var wg sync.WaitGroup
	for _, cl := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl.start = time.Now()
			if err := cl.run(ctx); err != nil && ctx.Err() == nil {
				recordErr(fmt.Errorf("storm client %d: %w", cl.id, err))
			}
		}()
	}
	select {
	case <-done:
	case <-time.After(timeout):
	}
	mu.Lock()
	res.Synced = synced
	if synced == n {
		res.Ms = round3(float64(last) / 1e6)
	}
	mu.Unlock()
	res.Retries = streamRetries.Load() - retries0
	cancel()
	wg.Wait()
	for _, cl := range cs {
		res.Bytes += cl.rxBytes.Load()
		res.Responses += cl.rxMsgs.Load()
		res.Requests += cl.txMsgs.Load()
	}
	return res
}

// waitReady waits (at most 10 s each) until the connections are READY: the storm measured is one
// of streams, not of TCP connects.
func waitReady(conns []*grpc.ClientConn) {
	for _, cc := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cc.Connect()
		for s := cc.GetState(); s.String() != "READY"; s = cc.GetState() {
			if !cc.WaitForStateChange(ctx, s) {
				break
			}
		}
		cancel()
	}
}
