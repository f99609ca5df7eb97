// The header compiles as C++ (and survives a double include); the calls link.
#include "pdipam.h"
#include "pdipam.h"

#include <cstdio>

int main() {
    pdipam_prefix p{};
    if (pdipam_prefix_parse("10.0.0.0/24", &p) != PDIPAM_STATUS_OK) return 1;
    pdipam_subnet *s = nullptr;
    if (pdipam_subnet_new(&p, &s) != PDIPAM_STATUS_OK) return 1;
    pdipam_prefix got{};
    pdipam_status st = pdipam_subnet_alloc_prefix(s, 28, &got);
    pdipam_subnet_free(s);
    std::printf("c++: %s\n", pdipam_status_str(st));
    return st == PDIPAM_STATUS_OK && pdipam_abi_version() ==
        ((PDIPAM_ABI_VERSION_MAJOR << 16) | PDIPAM_ABI_VERSION_MINOR) ? 0 : 1;
}
