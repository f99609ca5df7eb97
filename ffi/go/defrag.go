package pdipam

/*
#include <stdlib.h>
#include "pdipam.h"
*/
import "C"

import (
	"net/netip"
	"unsafe"
)

// Pin says why a holder cannot move (PinNone: it can).
type Pin uint8

// Pins.
const (
	PinNone             Pin = C.PDIPAM_PIN_NONE
	PinSubnetReserved   Pin = C.PDIPAM_PIN_SUBNET_RESERVED
	PinPrefix           Pin = C.PDIPAM_PIN_PREFIX
	PinInstancePrimary  Pin = C.PDIPAM_PIN_INSTANCE_PRIMARY
	PinRequesterManaged Pin = C.PDIPAM_PIN_REQUESTER_MANAGED
	PinUnknown          Pin = C.PDIPAM_PIN_UNKNOWN
)

// DefragHolder holds an address (a /32) or a prefix; moving it restarts Pods and detaches
// Interfaces, unless it is pinned.
type DefragHolder struct {
	Held             netip.Prefix
	Pin              Pin
	Pods, Interfaces uint32
}

// DefragReservation is an existing reservation: a prefix one, or an explicit one.
type DefragReservation struct {
	CIDR   netip.Prefix
	Prefix bool
}

// DefragStep reserves Region, then moves Moves out of it.
type DefragStep struct {
	Region           netip.Prefix
	Blocks           uint32
	Pods, Interfaces uint64
	Moves            []DefragHolder
}

// DefragPlan is the cheapest way to get the blocks asked for (docs/rules.md, "Defragmentation").
type DefragPlan struct {
	Pods, Interfaces, Reservations uint64
	// RoomNeeded addresses the moved pods need outside the regions; RoomAvailable are free there.
	RoomNeeded, RoomAvailable uint64
	// Already free in prefix reservations; After the plan.
	Already, After uint32
	Met            bool
	Steps          []DefragStep
	// Pinned stop more blocks coming back when the goal is not met.
	Pinned []DefragHolder
}

func holderFromC(h C.pdipam_defrag_holder) DefragHolder {
	return DefragHolder{Held: fromC(h.held), Pin: Pin(h.pin), Pods: uint32(h.pods), Interfaces: uint32(h.interfaces)}
}

// Defrag plans the cheapest way to get blocks free /blockLen blocks (28 for prefix delegation)
// inside prefix reservations of an IPv4 subnet.
func Defrag(subnet netip.Prefix, holders []DefragHolder, reservations []DefragReservation, blocks uint32, blockLen uint8) (DefragPlan, error) {
	cs, err := toC(subnet)
	if err != nil {
		return DefragPlan{}, err
	}
	// C memory: the arrays are read by the call and freed after it.
	n, m := len(holders), len(reservations)
	hs := (*C.pdipam_defrag_holder)(C.calloc(C.size_t(n+1), C.size_t(unsafe.Sizeof(C.pdipam_defrag_holder{}))))
	rs := (*C.pdipam_defrag_reservation)(C.calloc(C.size_t(m+1), C.size_t(unsafe.Sizeof(C.pdipam_defrag_reservation{}))))
	defer C.free(unsafe.Pointer(hs))
	defer C.free(unsafe.Pointer(rs))
	hv := unsafe.Slice(hs, n+1)
	for i, h := range holders {
		held, err := toC(h.Held)
		if err != nil {
			return DefragPlan{}, err
		}
		hv[i] = C.pdipam_defrag_holder{held: held, pin: C.uint8_t(h.Pin), pods: C.uint32_t(h.Pods), interfaces: C.uint32_t(h.Interfaces)}
	}
	rv := unsafe.Slice(rs, m+1)
	for i, r := range reservations {
		cidr, err := toC(r.CIDR)
		if err != nil {
			return DefragPlan{}, err
		}
		prefix := C.uint8_t(0)
		if r.Prefix {
			prefix = 1
		}
		rv[i] = C.pdipam_defrag_reservation{cidr: cidr, prefix: prefix}
	}
	var plan *C.pdipam_defrag_plan
	if err := call(func() C.pdipam_status {
		return C.pdipam_defrag_plan_new(&cs, hs, C.size_t(n), rs, C.size_t(m), C.uint32_t(blocks), C.uint8_t(blockLen), &plan)
	}); err != nil {
		return DefragPlan{}, err
	}
	defer C.pdipam_defrag_plan_free(plan)
	var t C.pdipam_defrag_totals
	if err := call(func() C.pdipam_status { return C.pdipam_defrag_plan_totals(plan, &t) }); err != nil {
		return DefragPlan{}, err
	}
	out := DefragPlan{Pods: uint64(t.pods), Interfaces: uint64(t.interfaces), Reservations: uint64(t.reservations),
		RoomNeeded: uint64(t.room_needed), RoomAvailable: uint64(t.room_available),
		Already: uint32(t.already), After: uint32(t.after), Met: t.met != 0}
	for i := C.uint32_t(0); i < t.steps; i++ {
		var s C.pdipam_defrag_step
		if err := call(func() C.pdipam_status { return C.pdipam_defrag_plan_step(plan, i, &s) }); err != nil {
			return DefragPlan{}, err
		}
		step := DefragStep{Region: fromC(s.region), Blocks: uint32(s.blocks), Pods: uint64(s.pods), Interfaces: uint64(s.interfaces)}
		for j := C.uint32_t(0); j < s.moves; j++ {
			var h C.pdipam_defrag_holder
			if err := call(func() C.pdipam_status { return C.pdipam_defrag_plan_move(plan, i, j, &h) }); err != nil {
				return DefragPlan{}, err
			}
			step.Moves = append(step.Moves, holderFromC(h))
		}
		out.Steps = append(out.Steps, step)
	}
	for i := C.uint32_t(0); i < t.pinned; i++ {
		var h C.pdipam_defrag_holder
		if err := call(func() C.pdipam_status { return C.pdipam_defrag_plan_pinned(plan, i, &h) }); err != nil {
			return DefragPlan{}, err
		}
		out.Pinned = append(out.Pinned, holderFromC(h))
	}
	return out, nil
}
