package pdipam_test

import (
	"errors"
	"fmt"
	"net/netip"

	"example.invalid/pdipam"
)

// A node's life from Go: carve a prefix from a subnet, attach it, give pods addresses.
func Example() {
	subnet, err := pdipam.NewSubnet(netip.MustParsePrefix("10.0.0.0/24"))
	if err != nil {
		panic(err)
	}
	defer subnet.Close()
	node, err := pdipam.NewNode("m5.large")
	if err != nil {
		panic(err)
	}
	defer node.Close()

	primary, _ := subnet.AllocIP()
	prefix, _ := subnet.AllocPrefix(28)
	if err := node.AttachInterface("eni-0", 0, primary); err != nil {
		panic(err)
	}
	if err := node.AttachPrefix("eni-0", prefix); err != nil {
		panic(err)
	}
	fmt.Println("eni-0 holds", prefix)
	for _, pod := range []string{"pod-0", "pod-1", "pod-2"} {
		addr, err := node.Assign("aws-cni", pod, "eth0")
		if err != nil {
			panic(err)
		}
		fmt.Println(pod, "->", addr)
	}
	node.Release("aws-cni", "pod-1", "eth0")
	_, err = node.Release("aws-cni", "pod-1", "eth0")
	fmt.Println("again:", errors.Is(err, pdipam.ErrUnknownPod))
	// Output:
	// eni-0 holds 10.0.0.16/28
	// pod-0 -> 10.0.0.16
	// pod-1 -> 10.0.0.17
	// pod-2 -> 10.0.0.18
	// again: true
}
