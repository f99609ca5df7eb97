package pdipam

/*
#include "pdipam.h"
*/
import "C"

import (
	"net/netip"
	"runtime"
	"time"
	"unsafe"
)

// Mode is how a node serves pods.
type Mode uint8

// Modes.
const (
	ModePrefix    Mode = C.PDIPAM_MODE_PREFIX
	ModeSecondary Mode = C.PDIPAM_MODE_SECONDARY
)

// Interface flags.
const (
	InterfacePrimary uint32 = C.PDIPAM_INTERFACE_PRIMARY
	InterfaceTrunk   uint32 = C.PDIPAM_INTERFACE_TRUNK
	InterfaceEFA     uint32 = C.PDIPAM_INTERFACE_EFA
	// InterfaceExcluded: excluded from pod addresses, or not managed by the CNI.
	InterfaceExcluded uint32 = C.PDIPAM_INTERFACE_EXCLUDED
)

// Fallback says why a node does not serve pods in the mode asked for.
type Fallback uint8

// Fallbacks.
const (
	// FallbackNone: the mode is as asked.
	FallbackNone Fallback = C.PDIPAM_FALLBACK_NONE
	// FallbackNotNitro: prefix mode on an instance type that cannot delegate prefixes; the
	// node serves secondary addresses, as ipamd does.
	FallbackNotNitro Fallback = C.PDIPAM_FALLBACK_NOT_NITRO
)

// NodeConfig is how a node serves pods.
type NodeConfig struct {
	Mode Mode
	// IPv6 pods instead of IPv4.
	IPv6             bool
	CustomNetworking bool
	Cooldown         time.Duration
	// MaxENI limits the interfaces used; 0 for none.
	MaxENI uint32
}

// DefaultNodeConfig is prefix mode, IPv4, a 30 s cooldown.
func DefaultNodeConfig() NodeConfig { return NodeConfig{Mode: ModePrefix, Cooldown: 30 * time.Second} }

// WarmSettings are the CNI's warm-pool variables (0 is unset where the CNI says so).
type WarmSettings struct {
	WarmENITarget, WarmIPTarget, MinimumIPTarget, WarmPrefixTarget uint32
	// MaxPods is the kubelet's maxPods; 0 for the instance type's recommended value.
	MaxPods uint32
}

// NodeStats are a node's counts.
type NodeStats struct {
	Interfaces, Total, Assigned, Cooling, Available uint32
	Pods                                            uint64
}

// ActionKind is what a planned action asks of the cloud.
type ActionKind uint8

// Action kinds.
const (
	ActionAttachPrefixes  ActionKind = C.PDIPAM_ACTION_ATTACH_PREFIXES
	ActionAttachAddresses ActionKind = C.PDIPAM_ACTION_ATTACH_ADDRESSES
	ActionAttachInterface ActionKind = C.PDIPAM_ACTION_ATTACH_INTERFACE
	ActionReleaseBlock    ActionKind = C.PDIPAM_ACTION_RELEASE_BLOCK
	ActionFreeInterface   ActionKind = C.PDIPAM_ACTION_FREE_INTERFACE
)

// Action is one step of a warm-pool plan.
type Action struct {
	Kind         ActionKind
	Interface    string
	DeviceNumber uint32
	Count        uint32
	// Prefixes is true when a new interface gets prefixes, false for secondary addresses.
	Prefixes bool
	// Block is the prefix or address (as /32 or /128) to give back.
	Block netip.Prefix
}

// Node is one node's interfaces and pod addresses. Safe for concurrent use.
type Node struct{ h handle }

func (n *Node) ptr(p unsafe.Pointer) *C.pdipam_node { return (*C.pdipam_node)(p) }

func wrapNode(out *C.pdipam_node) *Node {
	n := &Node{h: handle{ptr: unsafe.Pointer(out)}}
	runtime.SetFinalizer(n, (*Node).Close)
	return n
}

// NewNode creates a node of instanceType (e.g. "m5.large") with DefaultNodeConfig and the
// shipped manifest's warm settings (WARM_PREFIX_TARGET=1).
func NewNode(instanceType string) (*Node, error) {
	return NewNodeWith(instanceType, DefaultNodeConfig())
}

// NewNodeWith creates a node with the given configuration.
func NewNodeWith(instanceType string, cfg NodeConfig) (*Node, error) {
	buf, off, err := cstrings(instanceType)
	if err != nil {
		return nil, err
	}
	family := C.uint8_t(4)
	if cfg.IPv6 {
		family = 6
	}
	custom := C.uint8_t(0)
	if cfg.CustomNetworking {
		custom = 1
	}
	c := C.pdipam_node_config{mode: C.uint8_t(cfg.Mode), family: family, custom_networking: custom,
		cooldown_ms: C.uint32_t(cfg.Cooldown / time.Millisecond), max_eni: C.uint32_t(cfg.MaxENI)}
	var out *C.pdipam_node
	if err := call(func() C.pdipam_status { return C.pdipam_node_new_with(at(buf, off[0]), &c, &out) }); err != nil {
		return nil, err
	}
	return wrapNode(out), nil
}

// LoadNode restores a node from a checkpoint; quarantined counts allocations whose address lies
// in no attached block (kept aside, never given to another pod).
func LoadNode(path string) (node *Node, quarantined int, err error) {
	buf, off, err := cstrings(path)
	if err != nil {
		return nil, 0, err
	}
	var out *C.pdipam_node
	var q C.size_t
	if err := call(func() C.pdipam_status { return C.pdipam_node_load(at(buf, off[0]), &q, &out) }); err != nil {
		return nil, 0, err
	}
	return wrapNode(out), int(q), nil
}

// Close frees the node. Idempotent; later calls return ErrClosed.
func (n *Node) Close() error {
	n.h.close(func(p unsafe.Pointer) { C.pdipam_node_free((*C.pdipam_node)(p)) })
	runtime.SetFinalizer(n, nil)
	return nil
}

// do runs one call on the live node.
func (n *Node) do(f func(*C.pdipam_node) C.pdipam_status) error {
	err := n.h.use(func(p unsafe.Pointer) error {
		return call(func() C.pdipam_status { return f(n.ptr(p)) })
	})
	keep(n)
	return err
}

// AttachInterface attaches an interface (device 0 is flagged primary).
func (n *Node) AttachInterface(id string, deviceNumber uint32, primary netip.Addr) error {
	var flags uint32
	if deviceNumber == 0 {
		flags = InterfacePrimary
	}
	return n.AttachInterfaceWithFlags(id, deviceNumber, primary, flags)
}

// AttachInterfaceWithFlags attaches an interface with Interface* flags.
func (n *Node) AttachInterfaceWithFlags(id string, deviceNumber uint32, primary netip.Addr, flags uint32) error {
	buf, off, err := cstrings(id)
	if err != nil {
		return err
	}
	c, err := addrToC(primary)
	if err != nil {
		return err
	}
	return n.do(func(p *C.pdipam_node) C.pdipam_status {
		return C.pdipam_node_attach_interface_with_flags(p, at(buf, off[0]), C.uint32_t(deviceNumber), &c, C.uint32_t(flags))
	})
}

// AttachPrefix attaches a delegated prefix (IPv4 /28 or IPv6 /80) to an interface.
func (n *Node) AttachPrefix(id string, pfx netip.Prefix) error {
	buf, off, err := cstrings(id)
	if err != nil {
		return err
	}
	c, err := toC(pfx)
	if err != nil {
		return err
	}
	return n.do(func(p *C.pdipam_node) C.pdipam_status { return C.pdipam_node_attach_prefix(p, at(buf, off[0]), &c) })
}

// AttachSecondary attaches a secondary address to an interface.
func (n *Node) AttachSecondary(id string, a netip.Addr) error {
	buf, off, err := cstrings(id)
	if err != nil {
		return err
	}
	c, err := addrToC(a)
	if err != nil {
		return err
	}
	return n.do(func(p *C.pdipam_node) C.pdipam_status { return C.pdipam_node_attach_secondary(p, at(buf, off[0]), &c) })
}

func flag(b bool) C.uint8_t {
	if b {
		return 1
	}
	return 0
}

// RemoveBlock removes a prefix or secondary address (as /32 or /128); forced, it drops the pods
// holding addresses there and says how many.
func (n *Node) RemoveBlock(block netip.Prefix, force bool) (int, error) {
	c, err := toC(block)
	if err != nil {
		return 0, err
	}
	var dropped C.size_t
	err = n.do(func(p *C.pdipam_node) C.pdipam_status {
		return C.pdipam_node_remove_block(p, &c, flag(force), &dropped)
	})
	return int(dropped), err
}

// RemoveInterface removes an interface with everything on it.
func (n *Node) RemoveInterface(id string, force bool) (int, error) {
	buf, off, err := cstrings(id)
	if err != nil {
		return 0, err
	}
	var dropped C.size_t
	err = n.do(func(p *C.pdipam_node) C.pdipam_status {
		return C.pdipam_node_remove_interface(p, at(buf, off[0]), flag(force), &dropped)
	})
	return int(dropped), err
}

// Assign gives the pod keyed by (network, containerID, ifname) an address; the same key gets the
// same address again.
func (n *Node) Assign(network, containerID, ifname string) (netip.Addr, error) {
	buf, off, err := cstrings(network, containerID, ifname)
	if err != nil {
		return netip.Addr{}, err
	}
	var out C.pdipam_prefix
	err = n.do(func(p *C.pdipam_node) C.pdipam_status {
		return C.pdipam_node_assign(p, at(buf, off[0]), at(buf, off[1]), at(buf, off[2]), &out)
	})
	if err != nil {
		return netip.Addr{}, err
	}
	return fromC(out).Addr(), nil
}

// Release releases the pod's address (it cools down before reuse) and returns it.
func (n *Node) Release(network, containerID, ifname string) (netip.Addr, error) {
	buf, off, err := cstrings(network, containerID, ifname)
	if err != nil {
		return netip.Addr{}, err
	}
	var out C.pdipam_prefix
	err = n.do(func(p *C.pdipam_node) C.pdipam_status {
		return C.pdipam_node_release(p, at(buf, off[0]), at(buf, off[1]), at(buf, off[2]), &out)
	})
	if err != nil {
		return netip.Addr{}, err
	}
	return fromC(out).Addr(), nil
}

// Stats returns the node's counts.
func (n *Node) Stats() (NodeStats, error) {
	var st C.pdipam_node_stats
	err := n.do(func(p *C.pdipam_node) C.pdipam_status { return C.pdipam_node_get_stats(p, &st) })
	return NodeStats{Interfaces: uint32(st.interfaces), Total: uint32(st.total), Assigned: uint32(st.assigned),
		Cooling: uint32(st.cooling), Available: uint32(st.available), Pods: uint64(st.pods)}, err
}

// Mode returns the mode the node serves pods in, and why it is not the mode asked for.
func (n *Node) Mode() (Mode, Fallback, error) {
	var mode, fallback C.uint8_t
	err := n.do(func(p *C.pdipam_node) C.pdipam_status { return C.pdipam_node_get_mode(p, &mode, &fallback) })
	return Mode(mode), Fallback(fallback), err
}

// SetWarmSettings replaces the node's warm-pool settings.
func (n *Node) SetWarmSettings(w WarmSettings) error {
	c := C.pdipam_warm_settings{warm_eni_target: C.uint32_t(w.WarmENITarget), warm_ip_target: C.uint32_t(w.WarmIPTarget),
		minimum_ip_target: C.uint32_t(w.MinimumIPTarget), warm_prefix_target: C.uint32_t(w.WarmPrefixTarget),
		max_pods: C.uint32_t(w.MaxPods)}
	return n.do(func(p *C.pdipam_node) C.pdipam_status { return C.pdipam_node_set_warm_settings(p, &c) })
}

// Plan returns what the warm pool needs now, growth first (empty: nothing to do).
func (n *Node) Plan() ([]Action, error) {
	for capacity := 8; ; capacity *= 2 {
		buf := make([]C.pdipam_action, capacity)
		var count C.size_t
		err := n.do(func(p *C.pdipam_node) C.pdipam_status {
			return C.pdipam_node_plan(p, &buf[0], C.size_t(len(buf)), &count)
		})
		var e *Error
		if err != nil && asError(err, &e) && e.Status == Status(C.PDIPAM_STATUS_BUFFER_TOO_SMALL) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out := make([]Action, int(count))
		for i := range out {
			a := buf[i]
			out[i] = Action{Kind: ActionKind(a.kind), Interface: C.GoString(&a.interface_id[0]),
				DeviceNumber: uint32(a.device_number), Count: uint32(a.count), Prefixes: a.prefixes != 0}
			if a.kind == C.PDIPAM_ACTION_RELEASE_BLOCK {
				out[i].Block = fromC(a.block)
			}
		}
		return out, nil
	}
}

// Save writes the node's checkpoint to path durably.
func (n *Node) Save(path string) error {
	buf, off, err := cstrings(path)
	if err != nil {
		return err
	}
	return n.do(func(p *C.pdipam_node) C.pdipam_status { return C.pdipam_node_save(p, at(buf, off[0])) })
}

// Verify checks every invariant of the node.
func (n *Node) Verify() error {
	return n.do(func(p *C.pdipam_node) C.pdipam_status { return C.pdipam_node_verify(p) })
}

// MaxPodsOptions are the questions MaxPods asks (zero value: the calculator's defaults).
type MaxPodsOptions struct {
	PrefixDelegation, CustomNetworking, ShowMaxAllowed bool
	MaxENI                                             uint32
}

// MaxPods is the EKS max-pods value for instanceType.
func MaxPods(instanceType string, o MaxPodsOptions) (uint32, error) {
	buf, off, err := cstrings(instanceType)
	if err != nil {
		return 0, err
	}
	c := C.pdipam_max_pods_options{prefix_delegation: flag(o.PrefixDelegation), custom_networking: flag(o.CustomNetworking),
		show_max_allowed: flag(o.ShowMaxAllowed), max_eni: C.uint32_t(o.MaxENI)}
	var out C.uint32_t
	err = call(func() C.pdipam_status { return C.pdipam_max_pods(at(buf, off[0]), &c, &out) })
	return uint32(out), err
}
