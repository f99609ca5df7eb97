/* A node's life from C: carve prefixes from a subnet, attach them, give pods addresses.
 *   cargo build --release -p libpdipam
 *   cc -std=c11 -Iinclude ffi/examples/example.c target/release/libpdipam.a -lpthread -ldl -lm
 */
#include "pdipam.h"

#include <stdio.h>

static int fail(const char *what, pdipam_status status) {
    char why[256];
    size_t len;
    pdipam_last_error(why, sizeof why, &len);
    fprintf(stderr, "%s: %s: %s\n", what, pdipam_status_str(status), why);
    return 1;
}

int main(void) {
    pdipam_prefix cidr, primary, prefix, pod;
    pdipam_subnet *subnet = NULL;
    pdipam_node *node = NULL;
    char text[PDIPAM_PREFIX_TEXT_MAX];
    size_t len;
    pdipam_status s;

    pdipam_prefix_parse("10.0.0.0/24", &cidr);
    if ((s = pdipam_subnet_new(&cidr, &subnet))) return fail("subnet", s);
    if ((s = pdipam_node_new("m5.large", &node))) return fail("node", s);

    /* The interface's primary address and one /28 come from the subnet. */
    if ((s = pdipam_subnet_alloc_ip(subnet, &primary))) return fail("primary address", s);
    if ((s = pdipam_node_attach_interface(node, "eni-0", 0, &primary))) return fail("attach", s);
    if ((s = pdipam_subnet_alloc_prefix(subnet, 28, &prefix))) return fail("prefix", s);
    if ((s = pdipam_node_attach_prefix(node, "eni-0", &prefix))) return fail("attach prefix", s);
    pdipam_prefix_format(&prefix, text, sizeof text, &len);
    printf("eni-0 holds %s\n", text);

    for (int i = 0; i < 3; i++) {
        char container[16];
        snprintf(container, sizeof container, "pod-%d", i);
        if ((s = pdipam_node_assign(node, "aws-cni", container, "eth0", &pod)))
            return fail("assign", s);
        pdipam_prefix_format(&pod, text, sizeof text, &len);
        printf("%s -> %s\n", container, text);
    }
    if ((s = pdipam_node_release(node, "aws-cni", "pod-1", "eth0", &pod))) return fail("release", s);
    s = pdipam_node_release(node, "aws-cni", "pod-1", "eth0", &pod);
    printf("releasing pod-1 again: %s\n", pdipam_status_str(s));

    pdipam_node_free(node);
    pdipam_subnet_free(subnet);
    return 0;
}
