package wirehub

import (
	"sync"
	"sync/atomic"
)

// The registry maps the id stored as a connection's user data to its *Conn.
// Every event of a connection looks it up, so the lookup is two indexed
// loads and an atomic load (cgo.Handle's sync.Map cost ~3% of the echo
// benchmark); ids are allocated and freed once per connection.
const (
	chunkBits = 12
	chunkSize = 1 << chunkBits
	maxChunks = 1 << 12 // 16M live connections
)

type chunk [chunkSize]atomic.Pointer[Conn]

var registry struct {
	chunks [maxChunks]atomic.Pointer[chunk]
	mu     sync.Mutex
	free   []uintptr
	next   uintptr // ids start at 1: 0 means "no user data"
}

func registerConn(c *Conn) uintptr {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	var id uintptr
	if n := len(registry.free); n > 0 {
		id = registry.free[n-1]
		registry.free = registry.free[:n-1]
	} else {
		registry.next++
		id = registry.next
		if id>>chunkBits >= maxChunks {
			panic("wirehub: more than 16M live connections")
		}
	}
	ch := registry.chunks[id>>chunkBits].Load()
	if ch == nil {
		ch = new(chunk)
		registry.chunks[id>>chunkBits].Store(ch)
	}
	ch[id&(chunkSize-1)].Store(c)
	return id
}

func unregisterConn(id uintptr) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	registry.chunks[id>>chunkBits].Load()[id&(chunkSize-1)].Store(nil)
	registry.free = append(registry.free, id)
}

func lookupConn(id uintptr) *Conn {
	if id == 0 || id>>chunkBits >= maxChunks {
		return nil
	}
	ch := registry.chunks[id>>chunkBits].Load()
	if ch == nil {
		return nil
	}
	return ch[id&(chunkSize-1)].Load()
}
