//go:build pdipam_pkgconfig

package pdipam

// An installed libpdipam (ffi/install.sh), linked statically so the Go binary needs no
// libpdipam.so at run time.

/*
#cgo pkg-config: pdipam-static
*/
import "C"
