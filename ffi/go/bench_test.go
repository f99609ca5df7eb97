package pdipam

import (
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// One /28 allocate + release through the Go package (cgo, lock, error check).
func BenchmarkSubnetAllocRelease(b *testing.B) {
	s, err := NewSubnet(netip.MustParsePrefix("10.0.0.0/16"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < b.N; i++ {
		p, err := s.AllocPrefix(28)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Release(p); err != nil {
			b.Fatal(err)
		}
	}
}

// One pod assign + release through the Go package, no cooldown.
func BenchmarkNodeAssignRelease(b *testing.B) {
	n, err := NewNodeWith("m5.large", NodeConfig{Mode: ModePrefix, Cooldown: time.Duration(0)})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	n.AttachInterface("eni-0", 0, netip.MustParseAddr("10.0.0.10"))
	n.AttachPrefix("eni-0", netip.MustParsePrefix("10.0.1.16/28"))
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = "c" + strconv.Itoa(i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := ids[i%len(ids)]
		if _, err := n.Assign("net", id, "eth0"); err != nil {
			b.Fatal(err)
		}
		if _, err := n.Release("net", id, "eth0"); err != nil {
			b.Fatal(err)
		}
	}
}
