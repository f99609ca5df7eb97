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

// ObservedInterface is one interface as the cloud reports it attached (EC2
// DescribeNetworkInterfaces, or the instance metadata).
type ObservedInterface struct {
	ID           string
	DeviceNumber uint32
	// Flags (Interface*) are used when the interface is new to the node.
	Flags    uint32
	Primary  netip.Addr
	Prefixes []netip.Prefix
	// Addresses are its secondary addresses; the primary address listed here is skipped.
	Addresses []netip.Addr
}

// ChangeKind is what a reconcile did with one interface, block or pod.
type ChangeKind uint8

// Change kinds, in the order a diff lists them.
const (
	ChangeAddedInterface   ChangeKind = C.PDIPAM_CHANGE_ADDED_INTERFACE
	ChangeRemovedInterface ChangeKind = C.PDIPAM_CHANGE_REMOVED_INTERFACE
	ChangeAddedBlock       ChangeKind = C.PDIPAM_CHANGE_ADDED_BLOCK
	ChangeRemovedBlock     ChangeKind = C.PDIPAM_CHANGE_REMOVED_BLOCK
	// ChangeQuarantined: the pod's address vanished; it keeps it (no one else gets it) until
	// released.
	ChangeQuarantined ChangeKind = C.PDIPAM_CHANGE_QUARANTINED
	// ChangeReinstated: a quarantined pod's address came back.
	ChangeReinstated ChangeKind = C.PDIPAM_CHANGE_REINSTATED
	// ChangeIgnoredGivenBack: reported, but pdipam gave it back less than 60 s ago.
	ChangeIgnoredGivenBack ChangeKind = C.PDIPAM_CHANGE_IGNORED_GIVEN_BACK
	// ChangeAwaitingReport: not reported, but pdipam attached it less than 60 s ago.
	ChangeAwaitingReport ChangeKind = C.PDIPAM_CHANGE_AWAITING_REPORT
	// ChangeRefused: reported, but not taken (Status and Message say why).
	ChangeRefused ChangeKind = C.PDIPAM_CHANGE_REFUSED
)

// PodKey names a pod's allocation.
type PodKey struct{ Network, ContainerID, IfName string }

// CloudChange is one entry of a reconcile's diff.
type CloudChange struct {
	Kind ChangeKind
	// Interface is empty for a pod entry.
	Interface string
	// Block is the block, or a pod's address; invalid for an interface entry and a reinstated
	// pod.
	Block netip.Prefix
	// Pod is set for ChangeQuarantined and ChangeReinstated.
	Pod *PodKey
	// Status and Message say why, for ChangeRefused.
	Status  Status
	Message string
}

// Reconcile brings the node in line with what the cloud reports attached, in one change, and
// returns what changed (docs/rules.md, "Reconciling with the cloud"). An empty diff: the node
// matched the report.
func (n *Node) Reconcile(observed []ObservedInterface) ([]CloudChange, error) {
	// C memory: the report holds pointers, which cgo lets C keep only into C memory; freed
	// after the call.
	var allocs []unsafe.Pointer
	defer func() {
		for _, p := range allocs {
			C.free(p)
		}
	}()
	alloc := func(count int, size uintptr) unsafe.Pointer {
		p := C.calloc(C.size_t(count+1), C.size_t(size))
		allocs = append(allocs, p)
		return p
	}
	prefixSize := unsafe.Sizeof(C.pdipam_prefix{})
	report := (*C.pdipam_observed_interface)(alloc(len(observed), unsafe.Sizeof(C.pdipam_observed_interface{})))
	rv := unsafe.Slice(report, len(observed)+1)
	for i, o := range observed {
		// C.CString would cut an id at a NUL byte; cstrings refuses it instead.
		if _, _, err := cstrings(o.ID); err != nil {
			return nil, err
		}
		id := C.CString(o.ID)
		allocs = append(allocs, unsafe.Pointer(id))
		primary, err := addrToC(o.Primary)
		if err != nil {
			return nil, err
		}
		ps := (*C.pdipam_prefix)(alloc(len(o.Prefixes), prefixSize))
		pv := unsafe.Slice(ps, len(o.Prefixes)+1)
		for j, p := range o.Prefixes {
			if pv[j], err = toC(p); err != nil {
				return nil, err
			}
		}
		as := (*C.pdipam_prefix)(alloc(len(o.Addresses), prefixSize))
		av := unsafe.Slice(as, len(o.Addresses)+1)
		for j, a := range o.Addresses {
			if av[j], err = addrToC(a); err != nil {
				return nil, err
			}
		}
		rv[i] = C.pdipam_observed_interface{interface_id: id, device_number: C.uint32_t(o.DeviceNumber),
			flags: C.uint32_t(o.Flags), primary_addr: primary,
			prefixes: ps, prefixes_len: C.size_t(len(o.Prefixes)),
			addresses: as, addresses_len: C.size_t(len(o.Addresses))}
	}
	var diff *C.pdipam_cloud_diff
	if err := n.do(func(p *C.pdipam_node) C.pdipam_status {
		return C.pdipam_node_reconcile(p, report, C.size_t(len(observed)), &diff)
	}); err != nil {
		return nil, err
	}
	defer C.pdipam_cloud_diff_free(diff)
	return readDiff(diff)
}

func readDiff(diff *C.pdipam_cloud_diff) ([]CloudChange, error) {
	var count C.size_t
	if err := call(func() C.pdipam_status { return C.pdipam_cloud_diff_len(diff, &count) }); err != nil {
		return nil, err
	}
	out := make([]CloudChange, 0, int(count))
	for i := C.size_t(0); i < count; i++ {
		var c C.pdipam_cloud_change
		if err := call(func() C.pdipam_status { return C.pdipam_cloud_diff_change(diff, i, &c) }); err != nil {
			return nil, err
		}
		ch := CloudChange{Kind: ChangeKind(c.kind), Interface: C.GoString(&c.interface_id[0]), Status: Status(c.status)}
		if c.has_block != 0 {
			ch.Block = fromC(c.block)
		}
		switch ch.Kind {
		case ChangeQuarantined, ChangeReinstated:
			var parts [3]string
			for part := range parts {
				s, err := readText(func(buf *C.char, n C.size_t, l *C.size_t) C.pdipam_status {
					return C.pdipam_cloud_diff_pod_key(diff, i, C.uint8_t(part), buf, n, l)
				})
				if err != nil {
					return nil, err
				}
				parts[part] = s
			}
			ch.Pod = &PodKey{Network: parts[0], ContainerID: parts[1], IfName: parts[2]}
		case ChangeRefused:
			s, err := readText(func(buf *C.char, n C.size_t, l *C.size_t) C.pdipam_status {
				return C.pdipam_cloud_diff_message(diff, i, buf, n, l)
			})
			if err != nil {
				return nil, err
			}
			ch.Message = s
		}
		out = append(out, ch)
	}
	return out, nil
}
