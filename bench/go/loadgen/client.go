package main

import (
	"context"
	"fmt"
	"hash/maphash"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

const nackMessage = "loadgen: NACK on command"

// typeState is what one client holds for one resource type: names and versions, never bodies.
type typeState struct {
	names     map[string]bool   // names subscribed (EDS/RDS); nil for wildcard types
	// sorted: names, sorted, as the last SotW request listed them; nil when names changed since.
	// Envoy keeps its stored request and repeats it on every ACK; sorting 3300 names per ACK
	// made the loadgen, not the server, the limit of an endpoint change at 2000 proxies.
	sorted    []string
	have      map[string]string // name -> version held (interned strings)
	hash      map[string]uint64 // name -> hash of the body held (-content only)
	acked     bool              // a response was ACKed since the last subscription change (or reconnect)
	lastNonce string
	version   string
}

type client struct {
	id   int
	mode string
	// envoyOrder: request LDS only once clusters are warm (CDS ACKed, every EDS name received),
	// as Envoy's init manager does; otherwise CDS and LDS are requested together.
	envoyOrder bool
	node       *core.Node
	conn       *grpc.ClientConn
	start      time.Time
	syncAt     time.Duration
	synced     bool
	types      map[string]*typeState
	onSync     func(*client)

	// Set by the command goroutine, read by the stream goroutine.
	cancelMu     sync.Mutex
	cancelStream context.CancelFunc
	reconnectReq atomic.Pointer[reconnectOp] // asks the stream goroutine to reopen its stream
	resync       atomic.Pointer[reconnectOp] // the reconnect this client is resyncing for
	nackMu       sync.Mutex
	nack         map[string]int // type -> responses still to NACK

	// Owned by the stream goroutine.
	resyncIdx  int
	resyncHeld map[string]bool // delta reconnect: types whose state the client kept
	resyncDone bool

	// Written by the stream goroutine, read by trackers.
	rxBytes   atomic.Int64
	rxMsgs    atomic.Int64
	txMsgs    atomic.Int64 // requests sent
	lastRxNs  atomic.Int64 // unix ns of the last response
	lastAckNs atomic.Int64 // unix ns when the last ACK/NACK Send returned
	failures  int          // streams of this client that failed (for the backoff)

	churn churnSeen // the churn scenario (scenarios.go)
}

func (c *client) st(t string) *typeState {
	s := c.types[t]
	if s == nil {
		s = &typeState{have: map[string]string{}}
		if *contentHash {
			s.hash = map[string]uint64{}
		}
		c.types[t] = s
	}
	return s
}

// takeNack reports whether the next response of type t must be NACKed (and consumes it).
func (c *client) takeNack(t string) bool {
	if nackOutstanding.Load() == 0 {
		return false
	}
	c.nackMu.Lock()
	defer c.nackMu.Unlock()
	if c.nack[t] > 0 {
		c.nack[t]--
		nackOutstanding.Add(-1)
		return true
	}
	return false
}

// received accounts one response: counters, and the marks it satisfies (returned so the
// caller stamps their ACK time once the ACK is sent).
func (c *client) received(t string, size int, at time.Time, names []string, removed []string, sotw bool, changed map[string]bool) []*mark {
	if !c.count(t, size, at) {
		return nil
	}
	return matchMarks(c.id, t, at, names, removed, sotw, changed)
}

// count adds one received response to the counters; false when no mark is active.
func (c *client) count(t string, size int, at time.Time) bool {
	rx.add(t, size)
	c.rxBytes.Add(int64(size))
	c.rxMsgs.Add(1)
	c.lastRxNs.Store(at.UnixNano())
	lastRxNs.Store(at.UnixNano())
	return activeMarks.Load() != 0
}

// receivedAs: as received, with marks matched as type `as` with these names (a VHDS response
// meets RDS marks); removed names count as updated route configurations.
func (c *client) receivedAs(t, as string, size int, at time.Time, names []string, changed map[string]bool) []*mark {
	if !c.count(t, size, at) {
		return nil
	}
	return matchMarks(c.id, as, at, names, nil, false, changed)
}

// vhdsRouteConfigurations: the route configurations that VirtualHost resources (updated or
// removed) belong to, and those whose virtual hosts' bodies changed (-content).
func vhdsRouteConfigurations(updated, removed []string, changed map[string]bool) ([]string, map[string]bool) {
	seen := map[string]bool{}
	var rcs []string
	for _, list := range [][]string{updated, removed} {
		for _, n := range list {
			rc := routeConfigurationOf(n)
			if !seen[rc] {
				seen[rc] = true
				rcs = append(rcs, rc)
			}
		}
	}
	var rcChanged map[string]bool
	for n := range changed {
		if rcChanged == nil {
			rcChanged = map[string]bool{}
		}
		rcChanged[routeConfigurationOf(n)] = true
	}
	if *contentHash {
		for _, n := range removed { // a virtual host gone changes its route configuration too
			if rcChanged == nil {
				rcChanged = map[string]bool{}
			}
			rcChanged[routeConfigurationOf(n)] = true
		}
	}
	return rcs, rcChanged
}

// sent counts one request of this client.
func (c *client) sent() {
	c.txMsgs.Add(1)
	txMsgs.Add(1)
}

// contentChanges (-content only) hashes the bodies of a response's resources, returns the names
// whose body differs from what the client held (nil when none or when no mark is active), and
// records the new hashes. replaceAll: the response is the whole state of a wildcard type.
func (s *typeState) contentChanges(names []string, body func(i int) []byte, replaceAll bool) map[string]bool {
	if s.hash == nil {
		return nil
	}
	var changed map[string]bool
	fresh := s.hash
	if replaceAll {
		fresh = make(map[string]uint64, len(names))
	}
	for i, n := range names {
		h := maphash.Bytes(internSeed, body(i))
		if old, ok := s.hash[n]; (!ok || old != h) && activeMarks.Load() > 0 {
			if changed == nil {
				changed = map[string]bool{}
			}
			changed[n] = true
		}
		fresh[n] = h
	}
	s.hash = fresh
	return changed
}

func (c *client) answered(hits []*mark) {
	now := time.Now()
	c.lastAckNs.Store(now.UnixNano())
	for _, m := range hits {
		m.ackedBy(c.id, now)
	}
}

// checkSynced: initial sync (every type ACKed, every subscribed name held), or the resync
// after a reconnect command.
func (c *client) checkSynced() {
	if op := c.resync.Load(); op != nil {
		c.checkResynced(op)
		return
	}
	if c.synced {
		return
	}
	if !c.holdsAll(nil) {
		return
	}
	c.synced = true
	c.syncAt = time.Since(c.start)
	c.onSync(c)
}

// holdsAll: every type ACKed since the (re)connect, or (delta reconnect) kept from before,
// and every subscribed name held.
func (c *client) holdsAll(kept map[string]bool) bool {
	for _, t := range []string{cdsType, ldsType, edsType, rdsType, vhdsType} {
		s := c.types[t]
		if t == vhdsType && s == nil {
			continue // no route configuration with vhds
		}
		if s == nil || !(s.acked || kept[t]) {
			return false
		}
		for n := range s.names {
			if _, ok := s.have[n]; !ok {
				return false
			}
		}
	}
	return true
}

func (c *client) checkResynced(op *reconnectOp) {
	if c.resyncDone {
		return
	}
	if c.holdsAll(c.resyncHeld) {
		c.resyncDone = true
		op.ready(c.resyncIdx, time.Now())
	}
}

// clustersWarm: CDS ACKed and every subscribed EDS name held (Envoy's cluster manager is
// initialized then, and only then does Envoy ask for listeners).
func (c *client) clustersWarm() bool {
	cs := c.types[cdsType]
	if cs == nil || !cs.acked {
		return false
	}
	es := c.types[edsType]
	if es == nil {
		return true
	}
	for n := range es.names {
		if _, ok := es.have[n]; !ok {
			return false
		}
	}
	return true
}

// run keeps one stream open, reopening it when a reconnect command asks.
func (c *client) run(ctx context.Context) error {
	for {
		sctx, cancel := context.WithCancel(ctx)
		c.cancelMu.Lock()
		c.cancelStream = cancel
		c.cancelMu.Unlock()
		if op := c.reconnectReq.Load(); op != nil && c.resync.Load() != op {
			// A reconnect was asked before this stream existed: start it as the reconnect.
			c.reconnectReq.CompareAndSwap(op, nil)
			c.prepareReconnect(op)
		}
		var err error
		if c.mode == "sotw" {
			err = c.runSotw(sctx)
		} else {
			err = c.runDelta(sctx)
		}
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		op := c.reconnectReq.Swap(nil)
		if op == nil {
			if err == nil || !*retryStreams {
				return err
			}
			// Like Envoy: a failed stream is re-opened after a jittered, growing backoff
			// (Envoy's default 500 ms base, 30 s max; capped at 5 s here) with nothing kept (SotW)
			// or what it holds re-subscribed (delta).
			recordErr(fmt.Errorf("client %d (re-opening its stream): %w", c.id, err))
			streamRetries.Add(1)
			c.failures++
			backoff := 500 * time.Millisecond << min(c.failures-1, 4)
			if backoff > 5*time.Second {
				backoff = 5 * time.Second
			}
			select {
			case <-time.After(time.Duration(rand.Int63n(int64(backoff))) + backoff/2):
			case <-ctx.Done():
				return nil
			}
			c.restartStream()
			continue
		}
		c.prepareReconnect(op)
	}
}

// restartStream: the state for a stream re-opened after a failure (not a reconnect command).
func (c *client) restartStream() {
	if c.mode == "sotw" {
		c.types = map[string]*typeState{}
		return
	}
	// Delta: the client keeps what it holds and claims it in initial_resource_versions; a server
	// may answer nothing for a type it holds in full (Weft does), so a type ACKed before the
	// failure stays ACKed (otherwise a client cut during the initial sync never counts as synced).
	for _, s := range c.types {
		s.lastNonce = ""
	}
}

// requestReconnect is called by the command goroutine.
func (c *client) requestReconnect(op *reconnectOp) {
	c.reconnectReq.Store(op)
	c.cancelMu.Lock()
	if c.cancelStream != nil {
		c.cancelStream()
	}
	c.cancelMu.Unlock()
}

// prepareReconnect sets up the client state for the new stream: SotW like a restarted Envoy
// (nothing kept); delta like a reconnecting Envoy (keeps what it holds, re-subscribes).
func (c *client) prepareReconnect(op *reconnectOp) {
	c.resyncIdx = op.index[c.id]
	c.resyncDone = false
	c.resync.Store(op)
	if c.mode == "sotw" {
		c.types = map[string]*typeState{}
		return
	}
	c.resyncHeld = map[string]bool{}
	for t, s := range c.types {
		s.acked = false
		s.lastNonce = ""
		if s.names == nil {
			c.resyncHeld[t] = len(s.have) > 0
		} else {
			all := len(s.names) > 0
			for n := range s.names {
				if _, ok := s.have[n]; !ok {
					all = false
				}
			}
			c.resyncHeld[t] = all
		}
	}
}

func (c *client) runSotw(ctx context.Context) error {
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(c.conn).StreamAggregatedResources(ctx, grpc.ForceCodecV2(newResponseCodec()))
	if err != nil {
		return err
	}
	first := true // like Envoy with set_node_on_first_message_only (Istio's default)
	send := func(req *discovery.DiscoveryRequest) error {
		if first {
			req.Node = c.node
			first = false
		}
		c.sent()
		return stream.Send(req)
	}
	c.st(cdsType)
	if err := send(&discovery.DiscoveryRequest{TypeUrl: cdsType}); err != nil {
		return err
	}
	ldsRequested := false
	requestLds := func() error {
		ldsRequested = true
		c.st(ldsType)
		return send(&discovery.DiscoveryRequest{TypeUrl: ldsType})
	}
	if !c.envoyOrder {
		if err := requestLds(); err != nil {
			return err
		}
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		at := time.Now()
		t := resp.GetTypeUrl()
		s := c.st(t)
		version := intern(resp.GetVersionInfo())
		names := make([]string, len(resp.GetResources()))
		for i, a := range resp.GetResources() {
			names[i] = internBytes(decodeNameBytes(a.GetValue()))
		}
		res := resp.GetResources()
		changed := s.contentChanges(names, func(i int) []byte { return res[i].GetValue() }, s.names == nil)
		c.noteChurn(t, names, func(i int) []byte { return res[i].GetValue() }, at)
		hits := c.received(t, proto.Size(resp), at, names, nil, true, changed)
		var sub []string
		if s.names != nil {
			if s.sorted == nil {
				s.sorted = keys(s.names)
			}
			sub = s.sorted
		}
		if c.takeNack(t) {
			// Like Envoy rejecting an update: keep the previous version, answer with error_detail.
			err := send(&discovery.DiscoveryRequest{TypeUrl: t, ResourceNames: sub, VersionInfo: s.version, ResponseNonce: resp.GetNonce(),
				ErrorDetail: &status.Status{Code: 13, Message: nackMessage}})
			if err != nil {
				return err
			}
			s.lastNonce = resp.GetNonce()
			c.answered(hits)
			continue
		}
		if s.names == nil {
			// Wildcard (CDS/LDS): the response is the whole state of this type.
			s.have = make(map[string]string, len(names))
		}
		// EDS/RDS: the response carries the named resources it updates (a server may send only
		// the changed ones); names no longer subscribed are dropped below.
		for _, n := range names {
			s.have[n] = version
		}
		// Like Envoy: subscribe the dependent type before ACKing the parent.
		if t == cdsType || t == ldsType {
			dep := edsType
			if t == ldsType {
				dep = rdsType
			}
			refs := referenced(t, resp.GetResources())
			ds := c.st(dep)
			if ds.names == nil || !sameSet(ds.names, refs) {
				ds.names = make(map[string]bool, len(refs))
				for _, n := range refs {
					ds.names[n] = true
				}
				ds.sorted = nil
				for n := range ds.have {
					if !ds.names[n] {
						delete(ds.have, n)
						delete(ds.hash, n)
					}
				}
				ds.acked = false
				if err := send(&discovery.DiscoveryRequest{TypeUrl: dep, ResourceNames: refs, VersionInfo: ds.version, ResponseNonce: ds.lastNonce}); err != nil {
					return err
				}
			}
		}
		if !ldsRequested && t == edsType && c.clustersWarm() {
			if err := requestLds(); err != nil { // Envoy asks for listeners before it ACKs the endpoints
				return err
			}
		}
		s.version, s.lastNonce = version, resp.GetNonce()
		if err := send(&discovery.DiscoveryRequest{TypeUrl: t, ResourceNames: sub, VersionInfo: s.version, ResponseNonce: s.lastNonce}); err != nil {
			return err
		}
		c.answered(hits)
		s.acked = true
		if !ldsRequested && t == cdsType && c.clustersWarm() {
			if err := requestLds(); err != nil { // no EDS clusters to wait for
				return err
			}
		}
		c.checkSynced()
	}
}

func (c *client) runDelta(ctx context.Context) error {
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(c.conn).DeltaAggregatedResources(ctx, grpc.ForceCodecV2(newResponseCodec()))
	if err != nil {
		return err
	}
	first := true
	send := func(req *discovery.DeltaDiscoveryRequest) error {
		if first {
			req.Node = c.node
			first = false
		}
		c.sent()
		return stream.Send(req)
	}
	c.st(cdsType)
	if !c.envoyOrder {
		c.st(ldsType)
	}
	// Initial requests, in Envoy's subscription order: wildcard CDS and LDS, and (after a
	// reconnect) the EDS/RDS names it had, each with what the client already holds.
	for _, t := range []string{cdsType, edsType, ldsType, rdsType, vhdsType} {
		s := c.types[t]
		if s == nil {
			continue
		}
		// Wildcard CDS/LDS (names nil) go without any name, as Envoy 1.40 sends them (legacy
		// wildcard, seen in the calibration against real Envoy), not with an explicit "*".
		req := &discovery.DeltaDiscoveryRequest{TypeUrl: t}
		if s.names != nil {
			if len(s.names) == 0 {
				continue
			}
			req.ResourceNamesSubscribe = keys(s.names)
		}
		if len(s.have) > 0 {
			req.InitialResourceVersions = s.have
		}
		if err := send(req); err != nil {
			return err
		}
	}
	ldsRequested := c.types[ldsType] != nil
	requestLds := func() error {
		ldsRequested = true
		c.st(ldsType)
		return send(&discovery.DeltaDiscoveryRequest{TypeUrl: ldsType})
	}
	c.checkSynced() // a reconnecting client that holds everything may get no response at all
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		at := time.Now()
		t := resp.GetTypeUrl()
		s := c.st(t)
		names := make([]string, len(resp.GetResources()))
		for i, r := range resp.GetResources() {
			names[i] = intern(r.GetName())
		}
		res := resp.GetResources()
		changed := s.contentChanges(names, func(i int) []byte { return res[i].GetResource().GetValue() }, false)
		c.noteChurn(t, names, func(i int) []byte { return res[i].GetResource().GetValue() }, at)
		var hits []*mark
		if t == vhdsType {
			// Virtual hosts update their route configurations: RDS marks (route configuration
			// names) are met by the route configurations whose virtual hosts came or went.
			rcs, rcChanged := vhdsRouteConfigurations(names, resp.GetRemovedResources(), changed)
			hits = c.receivedAs(t, rdsType, proto.Size(resp), at, rcs, rcChanged)
		} else {
			hits = c.received(t, proto.Size(resp), at, names, resp.GetRemovedResources(), false, changed)
		}
		if c.takeNack(t) {
			if err := send(&discovery.DeltaDiscoveryRequest{TypeUrl: t, ResponseNonce: resp.GetNonce(),
				ErrorDetail: &status.Status{Code: 13, Message: nackMessage}}); err != nil {
				return err
			}
			c.answered(hits)
			continue
		}
		for i, r := range resp.GetResources() {
			s.have[names[i]] = intern(r.GetVersion())
		}
		for _, n := range resp.GetRemovedResources() {
			delete(s.have, n)
			delete(s.hash, n)
		}
		if t == cdsType || t == ldsType {
			dep := edsType
			if t == ldsType {
				dep = rdsType
			}
			res := make([]*anypb.Any, 0, len(resp.GetResources()))
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
				ds.sorted = nil
				if err := send(&discovery.DeltaDiscoveryRequest{TypeUrl: dep, ResourceNamesSubscribe: sub}); err != nil {
					return err
				}
			}
		}
		if !ldsRequested && t == edsType && c.clustersWarm() {
			if err := requestLds(); err != nil { // Envoy asks for listeners before it ACKs the endpoints
				return err
			}
		}
		if t == rdsType && c.types[vhdsType] == nil {
			// Like Envoy 1.40: the first route configuration with vhds opens the VirtualHost
			// subscription, with no names (the server sends the virtual hosts of the route
			// configurations it sent), before the RDS ACK.
			for _, r := range resp.GetResources() {
				if hasField(r.GetResource().GetValue(), 9) {
					c.st(vhdsType)
					if err := send(&discovery.DeltaDiscoveryRequest{TypeUrl: vhdsType}); err != nil {
						return err
					}
					break
				}
			}
		}
		if err := send(&discovery.DeltaDiscoveryRequest{TypeUrl: t, ResponseNonce: resp.GetNonce()}); err != nil {
			return err
		}
		c.answered(hits)
		s.acked = true
		if !ldsRequested && t == cdsType && c.clustersWarm() {
			if err := requestLds(); err != nil { // no EDS clusters to wait for
				return err
			}
		}
		c.checkSynced()
	}
}
