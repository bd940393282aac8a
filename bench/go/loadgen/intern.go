package main

import (
	"hash/maphash"
	"sync"
)

// Resource names and versions are the same strings on every client; interning them keeps
// per-client state at a few words per held resource (2000 clients x thousands of resources).
const internShards = 64

type internShard struct {
	mu sync.RWMutex
	m  map[string]string
}

var (
	internSeed  = maphash.MakeSeed()
	internTable [internShards]internShard
)

func init() {
	for i := range internTable {
		internTable[i].m = map[string]string{}
	}
}

func internBytes(b []byte) string {
	sh := &internTable[maphash.Bytes(internSeed, b)%internShards]
	sh.mu.RLock()
	s, ok := sh.m[string(b)] // no allocation for the lookup
	sh.mu.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	sh.mu.Lock()
	if old, ok := sh.m[s]; ok {
		s = old
	} else {
		sh.m[s] = s
	}
	sh.mu.Unlock()
	return s
}

func intern(s string) string {
	sh := &internTable[maphash.String(internSeed, s)%internShards]
	sh.mu.RLock()
	old, ok := sh.m[s]
	sh.mu.RUnlock()
	if ok {
		return old
	}
	sh.mu.Lock()
	if old, ok := sh.m[s]; ok {
		s = old
	} else {
		sh.m[s] = s
	}
	sh.mu.Unlock()
	return s
}
