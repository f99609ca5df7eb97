package pdipam

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestABIVersionMatchesHeader(t *testing.T) {
	if ABIVersion() != uint32(ABIVersionMajor)<<16|uint32(ABIVersionMinor) {
		t.Fatalf("library %#x, header %d.%d", ABIVersion(), ABIVersionMajor, ABIVersionMinor)
	}
	if Version() == "" {
		t.Fatal("empty version")
	}
}

func TestSubnetAllocatesAndRefusesWithTypedErrors(t *testing.T) {
	s, err := NewSubnet(mustPrefix(t, "10.0.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, err := s.AllocPrefix(28)
	if err != nil || p != mustPrefix(t, "10.0.0.16/28") {
		t.Fatalf("%v %v", p, err)
	}
	ip, err := s.AllocIP()
	if err != nil || ip != netip.MustParseAddr("10.0.0.4") {
		t.Fatalf("%v %v", ip, err)
	}
	err = s.AllocPrefixAt(mustPrefix(t, "10.0.0.16/28"))
	if !errors.Is(err, ErrAlreadyAllocated) || !strings.Contains(err.Error(), "10.0.0.16/28") {
		t.Fatalf("%v", err)
	}
	if err := s.AllocPrefixAt(mustPrefix(t, "10.0.0.200/28")); !errors.Is(err, ErrMisaligned) {
		t.Fatalf("%v", err)
	}
	if err := s.AllocPrefixAt(mustPrefix(t, "10.9.0.0/28")); !errors.Is(err, ErrOutsideSubnet) {
		t.Fatalf("%v", err)
	}
	if err := s.AllocPrefixAt(mustPrefix(t, "2600::/80")); !errors.Is(err, ErrWrongFamily) {
		t.Fatalf("%v", err)
	}
	if err := s.AllocIPAt(netip.MustParseAddr("10.0.0.255")); !errors.Is(err, ErrReservedAddress) {
		t.Fatalf("%v", err)
	}
	if err := s.AllocPrefixAt(netip.Prefix{}); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("%v", err)
	}
	if _, err := s.AllocPrefix(40); !errors.Is(err, ErrPrefixLength) {
		t.Fatalf("%v", err)
	}
	if err := s.Release(p); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(p); !errors.Is(err, ErrNotAllocated) {
		t.Fatalf("%v", err)
	}
	if free, err := s.IsFree(p); err != nil || !free {
		t.Fatalf("%v %v", free, err)
	}
	if err := s.ReleaseIP(ip); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestFragmentationIsExplained(t *testing.T) {
	s, err := NewSubnet(mustPrefix(t, "10.0.0.0/26"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, a := range []string{"10.0.0.20", "10.0.0.40", "10.0.0.50"} {
		if err := s.AllocIPAt(netip.MustParseAddr(a)); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.AllocPrefix(28)
	if !errors.Is(err, ErrInsufficientCidrBlocks) || !strings.Contains(err.Error(), "InsufficientCidrBlocks") {
		t.Fatalf("%v", err)
	}
	why, err := s.Explain(28)
	if err != nil || !strings.Contains(why, "4 candidate aligned blocks, 0 free") || !strings.Contains(why, "10.0.0.20") {
		t.Fatalf("%q %v", why, err)
	}
	st, err := s.Stats()
	if err != nil || st.Total != 64 || st.Free != 56 || st.FreeBlocks16 != 0 || st.Fragmentation != 1 {
		t.Fatalf("%+v %v", st, err)
	}
	tiny, err := NewSubnet(mustPrefix(t, "10.1.0.0/30"))
	if err != nil {
		t.Fatal(err)
	}
	defer tiny.Close()
	if _, err := tiny.AllocIP(); !errors.Is(err, ErrInsufficientFreeAddrs) {
		t.Fatalf("%v", err)
	}
}

func TestSubnetOptionsAndReservations(t *testing.T) {
	s, err := NewSubnetWith(mustPrefix(t, "10.0.0.0/24"), SubnetOptions{Profile: ProfileClassic, Placement: PlacementFirstFit})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ip, _ := s.AllocIP(); ip != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("%v", ip)
	}
	r := mustPrefix(t, "10.0.0.128/26")
	if err := s.AddReservation(r, ReservationPrefix); err != nil {
		t.Fatal(err)
	}
	if err := s.AddReservation(r, ReservationPrefix); !errors.Is(err, ErrReservationOverlap) {
		t.Fatalf("%v", err)
	}
	if err := s.AddReservation(r, ReservationKind(9)); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("%v", err)
	}
	if p, _ := s.AllocPrefix(28); p != mustPrefix(t, "10.0.0.128/28") {
		t.Fatalf("%v", p)
	}
	if err := s.RemoveReservation(r); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveReservation(r); !errors.Is(err, ErrReservationNotFound) {
		t.Fatalf("%v", err)
	}
	if _, err := NewSubnetWith(mustPrefix(t, "10.0.0.0/24"), SubnetOptions{Placement: 7}); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("%v", err)
	}
	if _, err := NewSubnet(mustPrefix(t, "10.0.0.0/4")); !errors.Is(err, ErrSubnetLength) {
		t.Fatalf("%v", err)
	}
}

func TestCloseIsIdempotentAndLaterCallsFail(t *testing.T) {
	s, err := NewSubnet(mustPrefix(t, "10.0.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
	if _, err := s.AllocPrefix(28); !errors.Is(err, ErrClosed) {
		t.Fatalf("%v", err)
	}
	n, err := NewNode("m5.large")
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	n.Close()
	if _, err := n.Assign("a", "b", "c"); !errors.Is(err, ErrClosed) {
		t.Fatalf("%v", err)
	}
}

func nodeWithPrefixes(t *testing.T, cfg NodeConfig, prefixes ...string) *Node {
	t.Helper()
	n, err := NewNodeWith("m5.large", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.AttachInterface("eni-1", 0, netip.MustParseAddr("10.0.0.10")); err != nil {
		t.Fatal(err)
	}
	for _, p := range prefixes {
		if err := n.AttachPrefix("eni-1", mustPrefix(t, p)); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func TestNodeAssignsReleasesAndRefuses(t *testing.T) {
	n := nodeWithPrefixes(t, DefaultNodeConfig(), "10.0.1.16/28")
	defer n.Close()
	a, err := n.Assign("aws-cni", "c1", "eth0")
	if err != nil || a != netip.MustParseAddr("10.0.1.16") {
		t.Fatalf("%v %v", a, err)
	}
	if again, _ := n.Assign("aws-cni", "c1", "eth0"); again != a {
		t.Fatalf("not idempotent: %v", again)
	}
	if r, err := n.Release("aws-cni", "c1", "eth0"); err != nil || r != a {
		t.Fatalf("%v %v", r, err)
	}
	_, err = n.Release("aws-cni", "c1", "eth0")
	if !errors.Is(err, ErrUnknownPod) || !strings.Contains(err.Error(), "unknown pod") {
		t.Fatalf("%v", err)
	}
	for i := 0; i < 20; i++ {
		_, err = n.Assign("aws-cni", fmt.Sprintf("fill-%d", i), "eth0")
	}
	if !errors.Is(err, ErrNoAvailableAddresses) || !strings.Contains(err.Error(), "no available IP/Prefix addresses") {
		t.Fatalf("%v", err)
	}
	st, err := n.Stats()
	if err != nil || st.Assigned != 15 || st.Cooling != 1 || st.Pods != 15 {
		t.Fatalf("%+v %v", st, err)
	}
	if _, err := n.Assign("aws-cni", "", "eth0"); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("%v", err)
	}
	if _, err := n.Assign("aws-cni", "c\x00d", "eth0"); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("%v", err)
	}
	if _, err := n.Assign("aws-cni", "c\xff", "eth0"); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("%v", err)
	}
	if err := n.AttachPrefix("eni-9", mustPrefix(t, "10.0.2.0/28")); !errors.Is(err, ErrUnknownInterface) {
		t.Fatalf("%v", err)
	}
	if err := n.AttachPrefix("eni-1", mustPrefix(t, "10.0.1.16/28")); !errors.Is(err, ErrAlreadyAttached) {
		t.Fatalf("%v", err)
	}
	if err := n.AttachPrefix("eni-1", mustPrefix(t, "10.0.2.8/28")); !errors.Is(err, ErrMisaligned) {
		t.Fatalf("%v", err)
	}
	if err := n.AttachInterface("eni-1", 1, netip.MustParseAddr("10.0.0.11")); !errors.Is(err, ErrDuplicateInterface) {
		t.Fatalf("%v", err)
	}
	if _, err := n.RemoveBlock(mustPrefix(t, "10.0.1.16/28"), false); !errors.Is(err, ErrInUse) {
		t.Fatalf("%v", err)
	}
	if dropped, err := n.RemoveBlock(mustPrefix(t, "10.0.1.16/28"), true); err != nil || dropped != 15 {
		t.Fatalf("%v %v", dropped, err)
	}
	if _, err := n.RemoveInterface("eni-1", false); !errors.Is(err, ErrPrimaryInterface) {
		t.Fatalf("%v", err)
	}
	if err := n.Verify(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewNode("m9.huge"); !errors.Is(err, ErrUnknownInstanceType) || !strings.Contains(err.Error(), "m9.huge") {
		t.Fatalf("%v", err)
	}
}

func TestPlanAndMaxPods(t *testing.T) {
	n, err := NewNode("t3.small")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.AttachInterface("eni-0", 0, netip.MustParseAddr("10.0.0.10")); err != nil {
		t.Fatal(err)
	}
	plan, err := n.Plan()
	if err != nil || len(plan) != 1 || plan[0].Kind != ActionAttachPrefixes || plan[0].Interface != "eni-0" || plan[0].Count != 1 {
		t.Fatalf("%+v %v", plan, err)
	}
	if err := n.SetWarmSettings(WarmSettings{WarmENITarget: 1, WarmIPTarget: 5, MinimumIPTarget: 20}); err != nil {
		t.Fatal(err)
	}
	if plan, _ := n.Plan(); len(plan) != 1 || plan[0].Count != 2 {
		t.Fatalf("%+v", plan)
	}
	for _, c := range []struct {
		o    MaxPodsOptions
		want uint32
	}{{MaxPodsOptions{}, 29}, {MaxPodsOptions{PrefixDelegation: true}, 110}, {MaxPodsOptions{PrefixDelegation: true, ShowMaxAllowed: true}, 434}} {
		if got, err := MaxPods("m5.large", c.o); err != nil || got != c.want {
			t.Fatalf("%+v: %v %v", c.o, got, err)
		}
	}
	if _, err := MaxPods("m5.lage", MaxPodsOptions{}); !errors.Is(err, ErrUnknownInstanceType) || !strings.Contains(err.Error(), "m5.large") {
		t.Fatalf("%v", err)
	}
}

func TestPrefixModeOffNitroFallsBackAndSaysSo(t *testing.T) {
	for _, c := range []struct {
		instance string
		mode     Mode
		fallback Fallback
	}{{"m4.xlarge", ModeSecondary, FallbackNotNitro}, {"m5.large", ModePrefix, FallbackNone}} {
		n, err := NewNode(c.instance)
		if err != nil {
			t.Fatal(err)
		}
		mode, fallback, err := n.Mode()
		n.Close()
		if err != nil || mode != c.mode || fallback != c.fallback {
			t.Fatalf("%s: %v %v %v", c.instance, mode, fallback, err)
		}
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	n := nodeWithPrefixes(t, DefaultNodeConfig(), "10.0.1.16/28")
	a, err := n.Assign("aws-cni", "c1", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "node.json")
	if err := n.Save(path); err != nil {
		t.Fatal(err)
	}
	n.Close()
	back, q, err := LoadNode(path)
	if err != nil || q != 0 {
		t.Fatalf("%v %v", q, err)
	}
	defer back.Close()
	if again, err := back.Assign("aws-cni", "c1", "eth0"); err != nil || again != a {
		t.Fatalf("%v %v", again, err)
	}
	raw, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(raw), "c1", "c2", 1)), 0o600)
	if _, _, err := LoadNode(path); !errors.Is(err, ErrCheckpointCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("%v", err)
	}
	if _, _, err := LoadNode(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, ErrIO) {
		t.Fatalf("%v", err)
	}
}

// Goroutines allocate and release on one subnet and one node at once; no address is held twice.
func TestGoroutinesNeverShareAnAddress(t *testing.T) {
	s, err := NewSubnet(mustPrefix(t, "10.0.0.0/22"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := nodeWithPrefixes(t, NodeConfig{Mode: ModePrefix, Cooldown: 0}, "10.0.1.16/28", "10.0.1.32/28", "10.0.1.48/28", "10.0.1.64/28")
	defer n.Close()
	var held sync.Map
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				p, err := s.AllocPrefix(30)
				if err != nil {
					errs <- err
					return
				}
				if _, dup := held.LoadOrStore(p, g); dup {
					errs <- fmt.Errorf("%v handed out twice", p)
				}
				id := fmt.Sprintf("g%d-%d", g, i)
				a, err := n.Assign("net", id, "eth0")
				if err != nil {
					errs <- err
					return
				}
				if _, dup := held.LoadOrStore(a, g); dup {
					errs <- fmt.Errorf("%v handed out twice", a)
				}
				time.Sleep(time.Microsecond)
				held.Delete(p)
				held.Delete(a)
				if err := s.Release(p); err != nil {
					errs <- err
				}
				if _, err := n.Release("net", id, "eth0"); err != nil {
					errs <- err
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	if err := n.Verify(); err != nil {
		t.Fatal(err)
	}
	// A Close racing with calls: calls either complete or get ErrClosed, never crash.
	racer, _ := NewSubnet(mustPrefix(t, "10.1.0.0/24"))
	var rg sync.WaitGroup
	for g := 0; g < 4; g++ {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for i := 0; i < 200; i++ {
				if p, err := racer.AllocPrefix(32); err == nil {
					racer.Release(p)
				} else if !errors.Is(err, ErrClosed) && !errors.Is(err, ErrInsufficientFreeAddrs) {
					t.Error(err)
				}
			}
		}()
	}
	racer.Close()
	rg.Wait()
}

// The /26 of the Rust and C tests, worked out by hand; planned from several goroutines at once
// (the race detector watches).
func TestDefragPlansTheCheapestRegions(t *testing.T) {
	subnet := netip.MustParsePrefix("10.0.0.0/26")
	var holders []DefragHolder
	for _, a := range []string{"10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.63"} {
		holders = append(holders, DefragHolder{Held: netip.PrefixFrom(netip.MustParseAddr(a), 32), Pin: PinSubnetReserved})
	}
	holders = append(holders,
		DefragHolder{Held: netip.MustParsePrefix("10.0.0.20/32")},
		DefragHolder{Held: netip.MustParsePrefix("10.0.0.40/32"), Pods: 1},
		DefragHolder{Held: netip.MustParsePrefix("10.0.0.50/32"), Pods: 3, Interfaces: 1})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := Defrag(subnet, holders, nil, 2, 28)
			if err != nil || !p.Met || p.After != 2 || p.Pods != 1 || p.Reservations != 2 || len(p.Steps) != 2 {
				t.Errorf("%+v %v", p, err)
				return
			}
			if p.Steps[0].Region != netip.MustParsePrefix("10.0.0.16/28") || p.Steps[0].Moves[0].Held != netip.MustParsePrefix("10.0.0.20/32") {
				t.Errorf("%+v", p.Steps)
			}
		}()
	}
	wg.Wait()
	p, err := Defrag(subnet, holders, nil, 3, 28)
	if err != nil || p.Met || p.After != 2 || len(p.Pinned) != 5 {
		t.Fatalf("%+v %v", p, err)
	}
	_, err = Defrag(subnet, []DefragHolder{{Held: netip.MustParsePrefix("10.0.1.1/32")}}, nil, 1, 28)
	if !errors.Is(err, ErrInvalidArg) || !strings.Contains(err.Error(), "10.0.1.1/32 is not inside") {
		t.Fatalf("%v", err)
	}
}

// Reconcile adds what the cloud reports, quarantines the pods of what vanished, holds off what
// pdipam changed itself in the last minute, and refuses what it cannot take by name.
func TestReconcileFollowsTheCloud(t *testing.T) {
	n := nodeWithPrefixes(t, DefaultNodeConfig(), "10.0.1.16/28")
	defer n.Close()
	pfx := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, mustPrefix(t, x))
		}
		return out
	}
	eni0 := ObservedInterface{ID: "eni-1", DeviceNumber: 0, Flags: InterfacePrimary,
		Primary: netip.MustParseAddr("10.0.0.10"), Prefixes: pfx("10.0.1.16/28", "10.0.3.0/28")}
	eni1 := ObservedInterface{ID: "eni-2", DeviceNumber: 1, Primary: netip.MustParseAddr("10.0.0.20"),
		Prefixes: pfx("10.0.2.8/28"), Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.20"), netip.MustParseAddr("10.0.0.21")}}
	diff, err := n.Reconcile([]ObservedInterface{eni0, eni1})
	if err != nil {
		t.Fatal(err)
	}
	want := []CloudChange{
		{Kind: ChangeAddedInterface, Interface: "eni-2"},
		{Kind: ChangeAddedBlock, Interface: "eni-1", Block: mustPrefix(t, "10.0.3.0/28")},
		{Kind: ChangeAddedBlock, Interface: "eni-2", Block: mustPrefix(t, "10.0.0.21/32")},
	}
	if len(diff) != 4 || fmt.Sprint(diff[:3]) != fmt.Sprint(want) {
		t.Fatalf("%+v", diff)
	}
	if r := diff[3]; r.Kind != ChangeRefused || r.Status != Status(ErrMisaligned.Status) || !strings.Contains(r.Message, "10.0.2.8/28") {
		t.Fatalf("%+v", r)
	}
	var last netip.Addr
	for i := 0; i < 17; i++ {
		if last, err = n.Assign("aws-cni", fmt.Sprintf("c%d", i), "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	eni0.Prefixes = eni0.Prefixes[:1]
	eni1.Prefixes = nil
	if diff, err = n.Reconcile([]ObservedInterface{eni0, eni1}); err != nil {
		t.Fatal(err)
	}
	if len(diff) != 2 || diff[1].Kind != ChangeQuarantined || diff[1].Block.Addr() != last ||
		*diff[1].Pod != (PodKey{"aws-cni", "c16", "eth0"}) {
		t.Fatalf("%+v", diff)
	}
	if _, err := n.Assign("aws-cni", "c16", "eth0"); !errors.Is(err, ErrKeyConflict) {
		t.Fatalf("the quarantined key holds its address: %v", err)
	}
	if a, err := n.Release("aws-cni", "c16", "eth0"); err != nil || a != last {
		t.Fatalf("%v %v", a, err)
	}
	bad := eni1
	bad.Flags = 0x100
	if _, err := n.Reconcile([]ObservedInterface{bad}); !errors.Is(err, ErrInvalidArg) {
		t.Fatalf("%v", err)
	}
	if err := n.Verify(); err != nil {
		t.Fatal(err)
	}
}
