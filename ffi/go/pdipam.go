// Package pdipam is the Go binding of pdipam, an embeddable IP address manager for pod networking
// built on prefix delegation. It wraps libpdipam (the C ABI, include/pdipam.h) with net/netip
// types and errors usable with errors.Is.
//
// It links libpdipam in one of three ways, chosen by build tag:
//
//   - no tag: the static library of this repository, built first from its root with
//     `cargo build --release -p libpdipam` (target/release/libpdipam.a);
//   - -tags pdipam_pkgconfig: an installed library, found by `pkg-config pdipam-static`
//     (`ffi/install.sh --prefix DIR`, then PKG_CONFIG_PATH=DIR/lib/pkgconfig if DIR is not a
//     standard prefix);
//   - -tags pdipam_external: whatever CGO_CFLAGS and CGO_LDFLAGS name, for a build in another
//     CARGO_TARGET_DIR: CGO_CFLAGS=-I$REPO/include
//     CGO_LDFLAGS="$CARGO_TARGET_DIR/release/libpdipam.a -lpthread -ldl -lm".
//
// Subnets and nodes are safe for concurrent use by many goroutines. Close releases one; it is
// idempotent, later calls return ErrClosed, and a finalizer closes what was forgotten.
package pdipam

/*
#include "pdipam.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"unsafe"
)

// ABI versions of the header this package was compiled against.
const (
	ABIVersionMajor = C.PDIPAM_ABI_VERSION_MAJOR
	ABIVersionMinor = C.PDIPAM_ABI_VERSION_MINOR
)

// ABIVersion is the linked library's (major << 16) | minor: equal to the header's when they match.
func ABIVersion() uint32 { return uint32(C.pdipam_abi_version()) }

// Version is the library's version, e.g. "0.1.0".
func Version() string { return C.GoString(C.pdipam_version()) }

// Status is a pdipam_status code.
type Status int32

// String is the code's name, e.g. "PDIPAM_STATUS_UNKNOWN_POD".
func (s Status) String() string { return C.GoString(C.pdipam_status_str(C.pdipam_status(s))) }

// Error is a failed call: its status and the library's message naming the offending value.
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Status.String()
	}
	return e.Message
}

// Is matches the sentinel of the same status: errors.Is(err, pdipam.ErrUnknownPod).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status && (t.Message == "" || t.Message == e.Message)
}

func sentinel(s C.pdipam_status) *Error { return &Error{Status: Status(s)} }

// Sentinels for errors.Is, one per status code.
var (
	ErrNullArg                = sentinel(C.PDIPAM_STATUS_NULL_ARG)
	ErrInvalidArg             = sentinel(C.PDIPAM_STATUS_INVALID_ARG)
	ErrBufferTooSmall         = sentinel(C.PDIPAM_STATUS_BUFFER_TOO_SMALL)
	ErrPanic                  = sentinel(C.PDIPAM_STATUS_PANIC)
	ErrPoisoned               = sentinel(C.PDIPAM_STATUS_POISONED)
	ErrInvariant              = sentinel(C.PDIPAM_STATUS_INVARIANT)
	ErrOutsideSubnet          = sentinel(C.PDIPAM_STATUS_OUTSIDE_SUBNET)
	ErrMisaligned             = sentinel(C.PDIPAM_STATUS_MISALIGNED)
	ErrWrongFamily            = sentinel(C.PDIPAM_STATUS_WRONG_FAMILY)
	ErrPrefixLength           = sentinel(C.PDIPAM_STATUS_PREFIX_LENGTH)
	ErrAlreadyAllocated       = sentinel(C.PDIPAM_STATUS_ALREADY_ALLOCATED)
	ErrNotAllocated           = sentinel(C.PDIPAM_STATUS_NOT_ALLOCATED)
	ErrReservedAddress        = sentinel(C.PDIPAM_STATUS_RESERVED_ADDRESS)
	ErrInsufficientCidrBlocks = sentinel(C.PDIPAM_STATUS_INSUFFICIENT_CIDR_BLOCKS)
	ErrInsufficientFreeAddrs  = sentinel(C.PDIPAM_STATUS_INSUFFICIENT_FREE_ADDRESSES)
	ErrReservationOverlap     = sentinel(C.PDIPAM_STATUS_RESERVATION_OVERLAP)
	ErrReservationNotFound    = sentinel(C.PDIPAM_STATUS_RESERVATION_NOT_FOUND)
	ErrNotOneAllocation       = sentinel(C.PDIPAM_STATUS_NOT_ONE_ALLOCATION)
	ErrSubnetLength           = sentinel(C.PDIPAM_STATUS_SUBNET_LENGTH)
	ErrUnknownPod             = sentinel(C.PDIPAM_STATUS_UNKNOWN_POD)
	ErrNoAvailableAddresses   = sentinel(C.PDIPAM_STATUS_NO_AVAILABLE_ADDRESSES)
	ErrUnknownInterface       = sentinel(C.PDIPAM_STATUS_UNKNOWN_INTERFACE)
	ErrDuplicateInterface     = sentinel(C.PDIPAM_STATUS_DUPLICATE_INTERFACE)
	ErrTooManyInterfaces      = sentinel(C.PDIPAM_STATUS_TOO_MANY_INTERFACES)
	ErrNoFreeSlot             = sentinel(C.PDIPAM_STATUS_NO_FREE_SLOT)
	ErrAlreadyAttached        = sentinel(C.PDIPAM_STATUS_ALREADY_ATTACHED)
	ErrNotAttached            = sentinel(C.PDIPAM_STATUS_NOT_ATTACHED)
	ErrInUse                  = sentinel(C.PDIPAM_STATUS_IN_USE)
	ErrCooling                = sentinel(C.PDIPAM_STATUS_COOLING)
	ErrPrimaryInterface       = sentinel(C.PDIPAM_STATUS_PRIMARY_INTERFACE)
	ErrKeyConflict            = sentinel(C.PDIPAM_STATUS_KEY_CONFLICT)
	ErrInvalidKey             = sentinel(C.PDIPAM_STATUS_INVALID_KEY)
	ErrUnknownInstanceType    = sentinel(C.PDIPAM_STATUS_UNKNOWN_INSTANCE_TYPE)
	ErrUnknownVcpus           = sentinel(C.PDIPAM_STATUS_UNKNOWN_VCPUS)
	ErrIO                     = sentinel(C.PDIPAM_STATUS_IO)
	ErrCheckpointCorrupt      = sentinel(C.PDIPAM_STATUS_CHECKPOINT_CORRUPT)
	ErrCheckpointConflict     = sentinel(C.PDIPAM_STATUS_CHECKPOINT_CONFLICT)
	ErrClosed                 = errors.New("pdipam: use of a closed subnet or node")
)

// check turns a status into an error carrying the library's message. The message is kept per
// OS thread, so the call and check run with the goroutine locked to its thread (see call).
func check(s C.pdipam_status) error {
	if s == C.PDIPAM_STATUS_OK {
		return nil
	}
	return &Error{Status: Status(s), Message: lastError()}
}

func lastError() string {
	var buf [512]C.char
	var n C.size_t
	if C.pdipam_last_error(&buf[0], C.size_t(len(buf)), &n) == C.PDIPAM_STATUS_OK {
		return C.GoStringN(&buf[0], C.int(n))
	}
	// Longer than the buffer: ask again with the size the library reported.
	long := make([]byte, int(n)+1)
	if C.pdipam_last_error((*C.char)(unsafe.Pointer(&long[0])), C.size_t(len(long)), &n) == C.PDIPAM_STATUS_OK {
		return string(long[:n])
	}
	return ""
}

// cstrings lays out NUL-terminated copies of strs in one Go buffer (no C allocation on the hot
// path); C reads them during the call only. A string holding a NUL byte cannot cross.
func cstrings(strs ...string) ([]byte, []int, error) {
	size := 0
	for _, s := range strs {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, nil, &Error{Status: Status(C.PDIPAM_STATUS_INVALID_ARG),
				Message: fmt.Sprintf("%q holds a NUL byte", s)}
		}
		size += len(s) + 1
	}
	buf := make([]byte, 0, size)
	offsets := make([]int, len(strs))
	for i, s := range strs {
		offsets[i] = len(buf)
		buf = append(buf, s...)
		buf = append(buf, 0)
	}
	return buf, offsets, nil
}

func at(buf []byte, offset int) *C.char { return (*C.char)(unsafe.Pointer(&buf[offset])) }

func toC(p netip.Prefix) (C.pdipam_prefix, error) {
	var c C.pdipam_prefix
	if !p.IsValid() {
		return c, &Error{Status: Status(C.PDIPAM_STATUS_INVALID_ARG), Message: fmt.Sprintf("invalid prefix %v", p)}
	}
	a := p.Addr()
	c.len = C.uint8_t(p.Bits())
	if a.Is4() {
		c.family = 4
		b := a.As4()
		for i := 0; i < 4; i++ {
			c.addr[i] = C.uint8_t(b[i])
		}
	} else {
		c.family = 6
		b := a.As16()
		for i := 0; i < 16; i++ {
			c.addr[i] = C.uint8_t(b[i])
		}
	}
	return c, nil
}

func addrToC(a netip.Addr) (C.pdipam_prefix, error) {
	if !a.IsValid() {
		return C.pdipam_prefix{}, &Error{Status: Status(C.PDIPAM_STATUS_INVALID_ARG), Message: "invalid address"}
	}
	return toC(netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
}

func fromC(c C.pdipam_prefix) netip.Prefix {
	var a netip.Addr
	if c.family == 4 {
		a = netip.AddrFrom4([4]byte{byte(c.addr[0]), byte(c.addr[1]), byte(c.addr[2]), byte(c.addr[3])})
	} else {
		var b [16]byte
		for i := range b {
			b[i] = byte(c.addr[i])
		}
		a = netip.AddrFrom16(b)
	}
	return netip.PrefixFrom(a, int(c.len))
}

// call runs one C call and reads its error message on the same OS thread.
func call(f func() C.pdipam_status) error {
	runtime.LockOSThread()
	err := check(f())
	runtime.UnlockOSThread()
	return err
}

func asError(err error, e **Error) bool { return errors.As(err, e) }

// readText reads a text the library writes into a caller's buffer (f fills buf, of n bytes,
// and reports the length): a size query first, then the read.
func readText(f func(buf *C.char, n C.size_t, length *C.size_t) C.pdipam_status) (string, error) {
	var n C.size_t
	err := call(func() C.pdipam_status { return f(nil, 0, &n) })
	var e *Error
	if err == nil || !asError(err, &e) || e.Status != Status(C.PDIPAM_STATUS_BUFFER_TOO_SMALL) {
		return "", err
	}
	buf := make([]byte, int(n)+1)
	err = call(func() C.pdipam_status { return f((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n) })
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
