package pdipam

/*
#include "pdipam.h"
*/
import "C"

import (
	"net/netip"
	"runtime"
	"unsafe"
)

// Profile is a subnet's reserved-address profile.
type Profile uint8

// Profiles.
const (
	ProfileAWS     Profile = C.PDIPAM_PROFILE_AWS
	ProfileClassic Profile = C.PDIPAM_PROFILE_CLASSIC
	ProfileNone    Profile = C.PDIPAM_PROFILE_NONE
)

// Placement is where automatic allocations go.
type Placement uint8

// Placement policies.
const (
	PlacementPack     Placement = C.PDIPAM_PLACEMENT_PACK
	PlacementFirstFit Placement = C.PDIPAM_PLACEMENT_FIRST_FIT
	PlacementRandom   Placement = C.PDIPAM_PLACEMENT_RANDOM
)

// ReservationKind is what a subnet CIDR reservation sets space aside for.
type ReservationKind uint8

// Reservation kinds.
const (
	ReservationPrefix   ReservationKind = C.PDIPAM_RESERVATION_PREFIX
	ReservationExplicit ReservationKind = C.PDIPAM_RESERVATION_EXPLICIT
)

// SubnetOptions builds a subnet other than the AWS default.
type SubnetOptions struct {
	Profile   Profile
	Placement Placement
	// NoFallback keeps automatic prefixes inside prefix reservations once they are full.
	NoFallback bool
	Seed       uint64
}

// SubnetStats is a subnet's occupancy (IPv4 counts are addresses, IPv6 counts are /80s).
type SubnetStats struct {
	Total, Reserved, Allocated, Free, Available uint64
	// FreeBlocks16 counts free aligned blocks of 16 units (IPv4 /28s).
	FreeBlocks16     uint64
	Fragmentation    float64
	LargestFreeBlock netip.Prefix // invalid when nothing is free
}

// Subnet is one subnet's allocator. Safe for concurrent use.
type Subnet struct{ h handle }

func (s *Subnet) ptr(p unsafe.Pointer) *C.pdipam_subnet { return (*C.pdipam_subnet)(p) }

// NewSubnet creates a subnet over cidr with the AWS reserved addresses and Pack placement.
func NewSubnet(cidr netip.Prefix) (*Subnet, error) {
	return NewSubnetWith(cidr, SubnetOptions{})
}

// NewSubnetWith creates a subnet with the given options.
func NewSubnetWith(cidr netip.Prefix, o SubnetOptions) (*Subnet, error) {
	c, err := toC(cidr)
	if err != nil {
		return nil, err
	}
	fallback := C.uint8_t(1)
	if o.NoFallback {
		fallback = 0
	}
	opts := C.pdipam_subnet_options{profile: C.uint8_t(o.Profile), placement: C.uint8_t(o.Placement),
		fallback_to_unreserved: fallback, seed: C.uint64_t(o.Seed)}
	var out *C.pdipam_subnet
	if err := call(func() C.pdipam_status { return C.pdipam_subnet_new_with(&c, &opts, &out) }); err != nil {
		return nil, err
	}
	s := &Subnet{h: handle{ptr: unsafe.Pointer(out)}}
	runtime.SetFinalizer(s, (*Subnet).Close)
	return s, nil
}

// Close frees the subnet. Idempotent; later calls return ErrClosed.
func (s *Subnet) Close() error {
	s.h.close(func(p unsafe.Pointer) { C.pdipam_subnet_free((*C.pdipam_subnet)(p)) })
	runtime.SetFinalizer(s, nil)
	return nil
}

// AllocPrefix allocates a prefix of length bits automatically.
func (s *Subnet) AllocPrefix(bits int) (netip.Prefix, error) {
	if bits < 0 || bits > 128 {
		return netip.Prefix{}, &Error{Status: Status(C.PDIPAM_STATUS_PREFIX_LENGTH), Message: "prefix length out of range"}
	}
	var out C.pdipam_prefix
	err := s.h.use(func(p unsafe.Pointer) error {
		return call(func() C.pdipam_status { return C.pdipam_subnet_alloc_prefix(s.ptr(p), C.uint8_t(bits), &out) })
	})
	keep(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return fromC(out), nil
}

// prefixCall runs a call taking one prefix.
func (s *Subnet) prefixCall(pfx netip.Prefix, f func(*C.pdipam_subnet, *C.pdipam_prefix) C.pdipam_status) error {
	c, err := toC(pfx)
	if err != nil {
		return err
	}
	err = s.h.use(func(p unsafe.Pointer) error {
		return call(func() C.pdipam_status { return f(s.ptr(p), &c) })
	})
	keep(s)
	return err
}

// AllocPrefixAt allocates exactly pfx.
func (s *Subnet) AllocPrefixAt(pfx netip.Prefix) error {
	return s.prefixCall(pfx, func(sub *C.pdipam_subnet, c *C.pdipam_prefix) C.pdipam_status {
		return C.pdipam_subnet_alloc_prefix_at(sub, c)
	})
}

// AllocIP allocates one IPv4 address automatically.
func (s *Subnet) AllocIP() (netip.Addr, error) {
	var out C.pdipam_prefix
	err := s.h.use(func(p unsafe.Pointer) error {
		return call(func() C.pdipam_status { return C.pdipam_subnet_alloc_ip(s.ptr(p), &out) })
	})
	keep(s)
	if err != nil {
		return netip.Addr{}, err
	}
	return fromC(out).Addr(), nil
}

// AllocIPAt allocates exactly the IPv4 address a.
func (s *Subnet) AllocIPAt(a netip.Addr) error {
	c, err := addrToC(a)
	if err != nil {
		return err
	}
	err = s.h.use(func(p unsafe.Pointer) error {
		return call(func() C.pdipam_status { return C.pdipam_subnet_alloc_ip_at(s.ptr(p), &c) })
	})
	keep(s)
	return err
}

// Release releases a prefix (or an address as a /32) exactly as allocated.
func (s *Subnet) Release(pfx netip.Prefix) error {
	return s.prefixCall(pfx, func(sub *C.pdipam_subnet, c *C.pdipam_prefix) C.pdipam_status {
		return C.pdipam_subnet_release(sub, c)
	})
}

// ReleaseIP releases a single address.
func (s *Subnet) ReleaseIP(a netip.Addr) error {
	return s.Release(netip.PrefixFrom(a, a.BitLen()))
}

// IsFree reports whether every address of pfx is free.
func (s *Subnet) IsFree(pfx netip.Prefix) (bool, error) {
	var free C.uint8_t
	err := s.prefixCall(pfx, func(sub *C.pdipam_subnet, c *C.pdipam_prefix) C.pdipam_status {
		return C.pdipam_subnet_is_free(sub, c, &free)
	})
	return free != 0, err
}

// AddReservation adds a subnet CIDR reservation.
func (s *Subnet) AddReservation(cidr netip.Prefix, kind ReservationKind) error {
	return s.prefixCall(cidr, func(sub *C.pdipam_subnet, c *C.pdipam_prefix) C.pdipam_status {
		return C.pdipam_subnet_add_reservation(sub, c, C.uint8_t(kind))
	})
}

// RemoveReservation removes the reservation with exactly this CIDR.
func (s *Subnet) RemoveReservation(cidr netip.Prefix) error {
	return s.prefixCall(cidr, func(sub *C.pdipam_subnet, c *C.pdipam_prefix) C.pdipam_status {
		return C.pdipam_subnet_remove_reservation(sub, c)
	})
}

// Stats returns the subnet's occupancy.
func (s *Subnet) Stats() (SubnetStats, error) {
	var st C.pdipam_subnet_stats
	err := s.h.use(func(p unsafe.Pointer) error {
		return call(func() C.pdipam_status { return C.pdipam_subnet_get_stats(s.ptr(p), &st) })
	})
	keep(s)
	if err != nil {
		return SubnetStats{}, err
	}
	out := SubnetStats{Total: uint64(st.total), Reserved: uint64(st.reserved), Allocated: uint64(st.allocated),
		Free: uint64(st.free), Available: uint64(st.available), FreeBlocks16: uint64(st.free_blocks_16),
		Fragmentation: float64(st.fragmentation)}
	if st.has_largest_free_block != 0 {
		out.LargestFreeBlock = fromC(st.largest_free_block)
	}
	return out, nil
}

// Explain says what stands in the way of an automatic prefix of length bits.
func (s *Subnet) Explain(bits int) (string, error) {
	var text string
	err := s.h.use(func(p unsafe.Pointer) error {
		var err error
		text, err = readText(func(buf *C.char, n C.size_t, length *C.size_t) C.pdipam_status {
			return C.pdipam_subnet_explain(s.ptr(p), C.uint8_t(bits), buf, n, length)
		})
		return err
	})
	keep(s)
	return text, err
}

// Verify checks every invariant of the subnet.
func (s *Subnet) Verify() error {
	err := s.h.use(func(p unsafe.Pointer) error {
		return call(func() C.pdipam_status { return C.pdipam_subnet_verify(s.ptr(p)) })
	})
	keep(s)
	return err
}
