package pdipam

import (
	"runtime"
	"sync"
	"unsafe"
)

// handle guards a C handle: calls hold the read lock, Close takes the write lock, so Close never
// frees a handle under a running call and no call starts on a freed one.
type handle struct {
	mu  sync.RWMutex
	ptr unsafe.Pointer
}

// use runs f with the live pointer, or returns ErrClosed.
func (h *handle) use(f func(p unsafe.Pointer) error) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.ptr == nil {
		return ErrClosed
	}
	return f(h.ptr)
}

// close frees the pointer once with free; later closes do nothing.
func (h *handle) close(free func(unsafe.Pointer)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ptr != nil {
		free(h.ptr)
		h.ptr = nil
	}
}

// keep is runtime.KeepAlive under a name that says why it is called after each use.
func keep(x interface{}) { runtime.KeepAlive(x) }
