//go:build !pdipam_pkgconfig && !pdipam_external

package pdipam

// The repository's own build: the header beside it, the static library of `cargo build
// --release -p libpdipam`.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libpdipam.a -lpthread -ldl -lm
*/
import "C"
