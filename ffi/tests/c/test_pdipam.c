/* The C ABI from C: one test function per behaviour, every error path included.
 * Built with -std=c11 -Wall -Wextra -Werror -pedantic, run plain, under ASan + UBSan and under
 * valgrind memcheck by ffi/tests/c.rs. */
#include "pdipam.h"
#include "pdipam.h" /* a second include must be harmless */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures = 0;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, __func__, \
                    #cond);                                                            \
            return false;                                                              \
        }                                                                              \
    } while (0)

#define EXPECT(call, status) CHECK((call) == (status))

static pdipam_prefix P(const char *text) {
    pdipam_prefix p;
    memset(&p, 0, sizeof p);
    if (pdipam_prefix_parse(text, &p) != PDIPAM_STATUS_OK) {
        fprintf(stderr, "cannot parse %s\n", text);
        abort();
    }
    return p;
}

static bool same(pdipam_prefix a, const char *text) {
    pdipam_prefix b = P(text);
    return a.family == b.family && a.len == b.len && memcmp(a.addr, b.addr, 16) == 0;
}

/* The message of the last failure contains `needle`. */
static bool last_error_has(const char *needle) {
    char buf[1024];
    size_t len = 0;
    if (pdipam_last_error(buf, sizeof buf, &len) != PDIPAM_STATUS_OK) return false;
    return strlen(buf) == len && strstr(buf, needle) != NULL;
}

static bool test_abi_version_matches_header(void) {
    CHECK(pdipam_abi_version() ==
          ((uint32_t)PDIPAM_ABI_VERSION_MAJOR << 16 | PDIPAM_ABI_VERSION_MINOR));
    CHECK(strlen(pdipam_version()) > 0);
    return true;
}

static bool test_status_str_takes_any_integer(void) {
    CHECK(strcmp(pdipam_status_str(PDIPAM_STATUS_OK), "PDIPAM_STATUS_OK") == 0);
    CHECK(strcmp(pdipam_status_str(PDIPAM_STATUS_INSUFFICIENT_CIDR_BLOCKS),
                 "PDIPAM_STATUS_INSUFFICIENT_CIDR_BLOCKS") == 0);
    CHECK(strcmp(pdipam_status_str(-7), "PDIPAM_STATUS_UNKNOWN") == 0);
    CHECK(strcmp(pdipam_status_str(INT32_MAX), "PDIPAM_STATUS_UNKNOWN") == 0);
    CHECK(strcmp(pdipam_status_str(INT32_MIN), "PDIPAM_STATUS_UNKNOWN") == 0);
    return true;
}

static bool test_prefix_parse_and_format(void) {
    pdipam_prefix p;
    EXPECT(pdipam_prefix_parse("10.1.2.16/28", &p), PDIPAM_STATUS_OK);
    CHECK(p.family == 4 && p.len == 28 && p.addr[0] == 10 && p.addr[3] == 16);
    EXPECT(pdipam_prefix_parse("2600:1f14::/80", &p), PDIPAM_STATUS_OK);
    CHECK(p.family == 6 && p.len == 80 && p.addr[0] == 0x26 && p.addr[1] == 0x00);
    EXPECT(pdipam_prefix_parse("10.0.0.5", &p), PDIPAM_STATUS_OK);
    CHECK(p.family == 4 && p.len == 32);

    char buf[PDIPAM_PREFIX_TEXT_MAX];
    size_t len = 0;
    pdipam_prefix q = P("10.1.2.16/28");
    EXPECT(pdipam_prefix_format(&q, buf, sizeof buf, &len), PDIPAM_STATUS_OK);
    CHECK(strcmp(buf, "10.1.2.16/28") == 0 && len == 12);
    pdipam_prefix big = P("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
    EXPECT(pdipam_prefix_format(&big, buf, sizeof buf, &len), PDIPAM_STATUS_OK);
    CHECK(len + 1 == PDIPAM_PREFIX_TEXT_MAX);
    return true;
}

static bool test_prefix_errors(void) {
    pdipam_prefix p;
    memset(&p, 0xAB, sizeof p);
    pdipam_prefix before = p;
    EXPECT(pdipam_prefix_parse(NULL, &p), PDIPAM_STATUS_NULL_ARG);
    CHECK(last_error_has("text is NULL"));
    EXPECT(pdipam_prefix_parse("10.0.0.0/28", NULL), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_prefix_parse("garbage", &p), PDIPAM_STATUS_INVALID_ARG);
    CHECK(last_error_has("garbage"));
    EXPECT(pdipam_prefix_parse("10.0.0.0/33", &p), PDIPAM_STATUS_INVALID_ARG);
    EXPECT(pdipam_prefix_parse("", &p), PDIPAM_STATUS_INVALID_ARG);
    EXPECT(pdipam_prefix_parse("10.0.0.0/28\xff", &p), PDIPAM_STATUS_INVALID_ARG);
    CHECK(last_error_has("UTF-8"));
    char *overlong = malloc(10000);
    memset(overlong, '1', 9999);
    overlong[9999] = 0;
    EXPECT(pdipam_prefix_parse(overlong, &p), PDIPAM_STATUS_INVALID_ARG);
    CHECK(last_error_has("longer than 4096"));
    free(overlong);
    CHECK(memcmp(&p, &before, sizeof p) == 0); /* outputs only on success */

    /* Bad family and lengths in a caller-built prefix. */
    pdipam_prefix bad = P("10.0.0.0/28");
    bad.family = 5;
    char buf[64];
    size_t len = 0;
    EXPECT(pdipam_prefix_format(&bad, buf, sizeof buf, &len), PDIPAM_STATUS_INVALID_ARG);
    CHECK(last_error_has("family 5"));
    bad.family = 4;
    bad.len = 200;
    EXPECT(pdipam_prefix_format(&bad, buf, sizeof buf, &len), PDIPAM_STATUS_INVALID_ARG);
    EXPECT(pdipam_prefix_format(NULL, buf, sizeof buf, &len), PDIPAM_STATUS_NULL_ARG);

    /* Short buffers: the needed length is reported, the buffer untouched. */
    pdipam_prefix q = P("10.1.2.16/28");
    memset(buf, 'x', sizeof buf);
    len = 0;
    EXPECT(pdipam_prefix_format(&q, buf, 12, &len), PDIPAM_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == 12 && buf[0] == 'x');
    EXPECT(pdipam_prefix_format(&q, NULL, 0, &len), PDIPAM_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == 12);
    EXPECT(pdipam_prefix_format(&q, NULL, 13, &len), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_prefix_format(&q, buf, sizeof buf, NULL), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_prefix_format(&q, buf, 13, &len), PDIPAM_STATUS_OK);
    CHECK(strcmp(buf, "10.1.2.16/28") == 0);
    return true;
}

static bool test_last_error_buffer(void) {
    pdipam_prefix p;
    EXPECT(pdipam_prefix_parse("nonsense", &p), PDIPAM_STATUS_INVALID_ARG);
    size_t len = 0;
    EXPECT(pdipam_last_error(NULL, 0, &len), PDIPAM_STATUS_BUFFER_TOO_SMALL);
    CHECK(len > 8);
    char *buf = malloc(len + 1);
    EXPECT(pdipam_last_error(buf, len + 1, &len), PDIPAM_STATUS_OK);
    CHECK(strstr(buf, "nonsense") != NULL);
    free(buf);
    EXPECT(pdipam_last_error(NULL, 0, NULL), PDIPAM_STATUS_NULL_ARG);
    return true;
}

static bool test_subnet_allocates_and_refuses(void) {
    pdipam_prefix cidr = P("10.0.0.0/24");
    pdipam_subnet *s = NULL;
    EXPECT(pdipam_subnet_new(&cidr, &s), PDIPAM_STATUS_OK);
    CHECK(s != NULL);

    pdipam_prefix got;
    EXPECT(pdipam_subnet_alloc_prefix(s, 28, &got), PDIPAM_STATUS_OK);
    CHECK(same(got, "10.0.0.16/28")); /* .0/28 holds the reserved .0-.3 */
    EXPECT(pdipam_subnet_alloc_ip(s, &got), PDIPAM_STATUS_OK);
    CHECK(same(got, "10.0.0.4/32"));

    pdipam_prefix at = P("10.0.0.208/28");
    EXPECT(pdipam_subnet_alloc_prefix_at(s, &at), PDIPAM_STATUS_OK);
    EXPECT(pdipam_subnet_alloc_prefix_at(s, &at), PDIPAM_STATUS_ALREADY_ALLOCATED);
    CHECK(last_error_has("10.0.0.208/28"));
    pdipam_prefix mis = P("10.0.0.200/28");
    EXPECT(pdipam_subnet_alloc_prefix_at(s, &mis), PDIPAM_STATUS_MISALIGNED);
    CHECK(last_error_has("10.0.0.200"));
    pdipam_prefix outside = P("10.9.0.0/28");
    EXPECT(pdipam_subnet_alloc_prefix_at(s, &outside), PDIPAM_STATUS_OUTSIDE_SUBNET);
    CHECK(last_error_has("10.9.0.0/28"));
    pdipam_prefix v6 = P("2600:1f14::/80");
    EXPECT(pdipam_subnet_alloc_prefix_at(s, &v6), PDIPAM_STATUS_WRONG_FAMILY);
    pdipam_prefix reserved = P("10.0.0.255/32");
    EXPECT(pdipam_subnet_alloc_ip_at(s, &reserved), PDIPAM_STATUS_RESERVED_ADDRESS);
    EXPECT(pdipam_subnet_alloc_ip_at(s, &cidr), PDIPAM_STATUS_INVALID_ARG);
    EXPECT(pdipam_subnet_alloc_prefix(s, 40, &got), PDIPAM_STATUS_PREFIX_LENGTH);

    uint8_t is_free = 9;
    EXPECT(pdipam_subnet_is_free(s, &at, &is_free), PDIPAM_STATUS_OK);
    CHECK(is_free == 0);
    EXPECT(pdipam_subnet_release(s, &at), PDIPAM_STATUS_OK);
    EXPECT(pdipam_subnet_release(s, &at), PDIPAM_STATUS_NOT_ALLOCATED);
    EXPECT(pdipam_subnet_is_free(s, &at, &is_free), PDIPAM_STATUS_OK);
    CHECK(is_free == 1);

    /* NULL everywhere. */
    EXPECT(pdipam_subnet_alloc_prefix(NULL, 28, &got), PDIPAM_STATUS_NULL_ARG);
    CHECK(last_error_has("subnet is NULL"));
    EXPECT(pdipam_subnet_alloc_prefix(s, 28, NULL), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_subnet_alloc_prefix_at(s, NULL), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_subnet_alloc_ip(s, NULL), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_subnet_release(s, NULL), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_subnet_release(NULL, &at), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_subnet_is_free(s, &at, NULL), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_subnet_new(NULL, &s), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_subnet_new(&cidr, NULL), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_subnet_verify(s), PDIPAM_STATUS_OK);
    pdipam_subnet_free(s);
    pdipam_subnet_free(NULL);
    return true;
}

static bool test_subnet_fragmentation_is_explained(void) {
    pdipam_prefix cidr = P("10.0.0.0/26");
    pdipam_subnet *s = NULL;
    EXPECT(pdipam_subnet_new(&cidr, &s), PDIPAM_STATUS_OK);
    const char *spoilers[] = {"10.0.0.20/32", "10.0.0.40/32", "10.0.0.50/32"};
    for (int i = 0; i < 3; i++) {
        pdipam_prefix a = P(spoilers[i]);
        EXPECT(pdipam_subnet_alloc_ip_at(s, &a), PDIPAM_STATUS_OK);
    }
    pdipam_prefix got;
    memset(&got, 0x5A, sizeof got);
    EXPECT(pdipam_subnet_alloc_prefix(s, 28, &got), PDIPAM_STATUS_INSUFFICIENT_CIDR_BLOCKS);
    CHECK(got.family == 0x5A); /* untouched */
    CHECK(last_error_has("InsufficientCidrBlocks"));

    pdipam_subnet_stats st;
    EXPECT(pdipam_subnet_get_stats(s, &st), PDIPAM_STATUS_OK);
    CHECK(st.total == 64 && st.reserved == 5 && st.allocated == 3 && st.free == 56);
    CHECK(st.free_blocks_16 == 0 && st.fragmentation == 1.0 && st.has_largest_free_block == 1);
    uint64_t n = 99;
    EXPECT(pdipam_subnet_free_blocks(s, 29, &n), PDIPAM_STATUS_OK);
    CHECK(n == 3); /* .8, .24, .32: the others hold .0-.3, .20, .40, .50 or .63 */

    size_t len = 0;
    EXPECT(pdipam_subnet_explain(s, 28, NULL, 0, &len), PDIPAM_STATUS_BUFFER_TOO_SMALL);
    char *why = malloc(len + 1);
    EXPECT(pdipam_subnet_explain(s, 28, why, len + 1, &len), PDIPAM_STATUS_OK);
    CHECK(strstr(why, "4 candidate aligned blocks, 0 free") != NULL);
    CHECK(strstr(why, "10.0.0.20") != NULL);
    free(why);
    EXPECT(pdipam_subnet_explain(s, 99, NULL, 0, &len), PDIPAM_STATUS_PREFIX_LENGTH);

    /* Single addresses in a full subnet. */
    pdipam_prefix small = P("10.1.0.0/30");
    pdipam_subnet *tiny = NULL;
    EXPECT(pdipam_subnet_new(&small, &tiny), PDIPAM_STATUS_OK);
    EXPECT(pdipam_subnet_alloc_ip(tiny, &got), PDIPAM_STATUS_INSUFFICIENT_FREE_ADDRESSES);
    pdipam_subnet_free(tiny);
    pdipam_subnet_free(s);
    return true;
}

static bool test_subnet_options_and_reservations(void) {
    pdipam_prefix cidr = P("10.0.0.0/24");
    pdipam_subnet_options o = {PDIPAM_PROFILE_CLASSIC, PDIPAM_PLACEMENT_FIRST_FIT, 1, 0};
    pdipam_subnet *s = NULL;
    EXPECT(pdipam_subnet_new_with(&cidr, &o, &s), PDIPAM_STATUS_OK);
    pdipam_prefix got;
    EXPECT(pdipam_subnet_alloc_ip(s, &got), PDIPAM_STATUS_OK);
    CHECK(same(got, "10.0.0.1/32")); /* Classic reserves only .0 and .255 */

    pdipam_prefix res = P("10.0.0.128/26");
    EXPECT(pdipam_subnet_add_reservation(s, &res, PDIPAM_RESERVATION_PREFIX), PDIPAM_STATUS_OK);
    EXPECT(pdipam_subnet_add_reservation(s, &res, PDIPAM_RESERVATION_PREFIX),
           PDIPAM_STATUS_RESERVATION_OVERLAP);
    EXPECT(pdipam_subnet_add_reservation(s, &res, 7), PDIPAM_STATUS_INVALID_ARG);
    CHECK(last_error_has("reservation kind 7"));
    EXPECT(pdipam_subnet_alloc_prefix(s, 28, &got), PDIPAM_STATUS_OK);
    CHECK(same(got, "10.0.0.128/28"));
    EXPECT(pdipam_subnet_remove_reservation(s, &res), PDIPAM_STATUS_OK);
    EXPECT(pdipam_subnet_remove_reservation(s, &res), PDIPAM_STATUS_RESERVATION_NOT_FOUND);
    /* Half of an allocated /28 is not one allocation. */
    pdipam_prefix half = P("10.0.0.128/29");
    EXPECT(pdipam_subnet_release(s, &half), PDIPAM_STATUS_NOT_ONE_ALLOCATION);
    CHECK(last_error_has("10.0.0.128/29"));
    pdipam_subnet_free(s);

    /* Without the fallback, automatic prefixes come only from prefix reservations. */
    o.fallback_to_unreserved = 0;
    EXPECT(pdipam_subnet_new_with(&cidr, &o, &s), PDIPAM_STATUS_OK);
    pdipam_prefix one = P("10.0.0.64/28");
    EXPECT(pdipam_subnet_add_reservation(s, &one, PDIPAM_RESERVATION_PREFIX), PDIPAM_STATUS_OK);
    EXPECT(pdipam_subnet_alloc_prefix(s, 28, &got), PDIPAM_STATUS_OK);
    CHECK(same(got, "10.0.0.64/28"));
    /* The reservation, the only place it may look, has no address left. */
    EXPECT(pdipam_subnet_alloc_prefix(s, 28, &got), PDIPAM_STATUS_INSUFFICIENT_FREE_ADDRESSES);
    EXPECT(pdipam_subnet_alloc_ip(s, &got), PDIPAM_STATUS_OK);
    pdipam_subnet_free(s);

    pdipam_subnet *bad = NULL;
    o.placement = 9;
    EXPECT(pdipam_subnet_new_with(&cidr, &o, &bad), PDIPAM_STATUS_INVALID_ARG);
    CHECK(bad == NULL);
    o.placement = PDIPAM_PLACEMENT_RANDOM;
    o.profile = 3;
    EXPECT(pdipam_subnet_new_with(&cidr, &o, &bad), PDIPAM_STATUS_INVALID_ARG);
    EXPECT(pdipam_subnet_new_with(&cidr, NULL, &bad), PDIPAM_STATUS_NULL_ARG);
    pdipam_prefix huge = P("10.0.0.0/4");
    EXPECT(pdipam_subnet_new(&huge, &bad), PDIPAM_STATUS_SUBNET_LENGTH);
    CHECK(bad == NULL);
    return true;
}

static bool test_ipv6_subnet(void) {
    pdipam_prefix cidr = P("2600:1f14:aaaa:bbbb::/64");
    pdipam_subnet *s = NULL;
    EXPECT(pdipam_subnet_new(&cidr, &s), PDIPAM_STATUS_OK);
    pdipam_prefix got;
    EXPECT(pdipam_subnet_alloc_prefix(s, 80, &got), PDIPAM_STATUS_OK);
    CHECK(got.family == 6 && got.len == 80);
    EXPECT(pdipam_subnet_alloc_ip(s, &got), PDIPAM_STATUS_WRONG_FAMILY);
    pdipam_prefix v4 = P("10.0.0.0/28");
    EXPECT(pdipam_subnet_release(s, &v4), PDIPAM_STATUS_WRONG_FAMILY);
    pdipam_subnet_free(s);
    return true;
}

static pdipam_node *node_with_one_prefix(void) {
    pdipam_node *n = NULL;
    if (pdipam_node_new("m5.large", &n) != PDIPAM_STATUS_OK) return NULL;
    pdipam_prefix primary = P("10.0.0.10");
    pdipam_prefix prefix = P("10.0.1.16/28");
    if (pdipam_node_attach_interface(n, "eni-1", 0, &primary) != PDIPAM_STATUS_OK ||
        pdipam_node_attach_prefix(n, "eni-1", &prefix) != PDIPAM_STATUS_OK) {
        pdipam_node_free(n);
        return NULL;
    }
    return n;
}

static bool test_node_assigns_idempotently_and_releases(void) {
    pdipam_node *n = node_with_one_prefix();
    CHECK(n != NULL);
    pdipam_prefix a, b;
    EXPECT(pdipam_node_assign(n, "aws-cni", "c1", "eth0", &a), PDIPAM_STATUS_OK);
    CHECK(same(a, "10.0.1.16/32"));
    EXPECT(pdipam_node_assign(n, "aws-cni", "c1", "eth0", &b), PDIPAM_STATUS_OK);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    EXPECT(pdipam_node_assign(n, "aws-cni", "c2", "eth0", &b), PDIPAM_STATUS_OK);
    CHECK(same(b, "10.0.1.17/32"));

    pdipam_node_stats st;
    EXPECT(pdipam_node_get_stats(n, &st), PDIPAM_STATUS_OK);
    CHECK(st.interfaces == 1 && st.total == 16 && st.assigned == 2 && st.pods == 2);

    pdipam_prefix r;
    EXPECT(pdipam_node_release(n, "aws-cni", "c1", "eth0", &r), PDIPAM_STATUS_OK);
    CHECK(same(r, "10.0.1.16/32"));
    EXPECT(pdipam_node_release(n, "aws-cni", "c1", "eth0", &r), PDIPAM_STATUS_UNKNOWN_POD);
    CHECK(last_error_has("unknown pod"));
    EXPECT(pdipam_node_get_stats(n, &st), PDIPAM_STATUS_OK);
    CHECK(st.cooling == 1 && st.available == 14);

    /* Fill the prefix: 16 addresses, one cooling, one held. */
    char id[32];
    int placed = 0;
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "fill-%d", i);
        pdipam_status s = pdipam_node_assign(n, "aws-cni", id, "eth0", &a);
        if (s == PDIPAM_STATUS_OK) {
            placed++;
        } else {
            EXPECT(s, PDIPAM_STATUS_NO_AVAILABLE_ADDRESSES);
            CHECK(last_error_has("no available IP/Prefix addresses"));
        }
    }
    CHECK(placed == 14);
    EXPECT(pdipam_node_verify(n), PDIPAM_STATUS_OK);
    pdipam_node_free(n);
    pdipam_node_free(NULL);
    return true;
}

static bool test_node_errors(void) {
    pdipam_node *n = NULL;
    EXPECT(pdipam_node_new("m9.huge", &n), PDIPAM_STATUS_UNKNOWN_INSTANCE_TYPE);
    CHECK(last_error_has("m9.huge") && n == NULL);
    EXPECT(pdipam_node_new(NULL, &n), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_node_new("m5.large", NULL), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_node_new("m5.\xc3\x28", &n), PDIPAM_STATUS_INVALID_ARG);

    n = node_with_one_prefix();
    CHECK(n != NULL);
    pdipam_prefix a;
    pdipam_prefix primary = P("10.0.0.11");
    EXPECT(pdipam_node_attach_interface(n, "eni-1", 1, &primary), PDIPAM_STATUS_DUPLICATE_INTERFACE);
    EXPECT(pdipam_node_attach_interface(n, "eni-2", 0, &primary), PDIPAM_STATUS_DUPLICATE_INTERFACE);
    EXPECT(pdipam_node_attach_interface(n, "", 1, &primary), PDIPAM_STATUS_INVALID_ARG);
    char long_id[100];
    memset(long_id, 'e', 99);
    long_id[99] = 0;
    EXPECT(pdipam_node_attach_interface(n, long_id, 1, &primary), PDIPAM_STATUS_INVALID_ARG);
    pdipam_prefix not_addr = P("10.0.0.0/28");
    EXPECT(pdipam_node_attach_interface(n, "eni-2", 1, &not_addr), PDIPAM_STATUS_INVALID_ARG);
    CHECK(last_error_has("single address"));
    EXPECT(pdipam_node_attach_interface_with_flags(n, "eni-2", 1, &primary, 64),
           PDIPAM_STATUS_INVALID_ARG);

    pdipam_prefix prefix = P("10.0.1.16/28");
    EXPECT(pdipam_node_attach_prefix(n, "eni-1", &prefix), PDIPAM_STATUS_ALREADY_ATTACHED);
    pdipam_prefix misaligned = P("10.0.1.8/28");
    EXPECT(pdipam_node_attach_prefix(n, "eni-1", &misaligned), PDIPAM_STATUS_MISALIGNED);
    pdipam_prefix wrong_len = P("10.0.2.0/27");
    EXPECT(pdipam_node_attach_prefix(n, "eni-1", &wrong_len), PDIPAM_STATUS_PREFIX_LENGTH);
    pdipam_prefix other = P("10.0.3.0/28");
    EXPECT(pdipam_node_attach_prefix(n, "eni-9", &other), PDIPAM_STATUS_UNKNOWN_INTERFACE);
    CHECK(last_error_has("eni-9"));

    EXPECT(pdipam_node_assign(n, "aws-cni", "", "eth0", &a), PDIPAM_STATUS_INVALID_KEY);
    EXPECT(pdipam_node_assign(n, "aws-cni", NULL, "eth0", &a), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_node_assign(n, "aws-cni", "c1", "eth0", NULL), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_node_assign(NULL, "aws-cni", "c1", "eth0", &a), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_node_assign(n, "aws-cni", "c\xff", "eth0", &a), PDIPAM_STATUS_INVALID_ARG);

    /* A prefix holding a pod is not removed unless forced; forced, the pod is dropped. */
    EXPECT(pdipam_node_assign(n, "aws-cni", "c1", "eth0", &a), PDIPAM_STATUS_OK);
    size_t dropped = 99;
    EXPECT(pdipam_node_remove_block(n, &prefix, 0, &dropped), PDIPAM_STATUS_IN_USE);
    CHECK(dropped == 99);
    EXPECT(pdipam_node_remove_interface(n, "eni-1", 0, &dropped), PDIPAM_STATUS_PRIMARY_INTERFACE);
    EXPECT(pdipam_node_remove_block(n, &prefix, 1, &dropped), PDIPAM_STATUS_OK);
    CHECK(dropped == 1);
    EXPECT(pdipam_node_remove_block(n, &prefix, 1, NULL), PDIPAM_STATUS_NOT_ATTACHED);
    EXPECT(pdipam_node_remove_interface(n, "eni-7", 1, NULL), PDIPAM_STATUS_UNKNOWN_INTERFACE);
    EXPECT(pdipam_node_verify(n), PDIPAM_STATUS_OK);
    pdipam_node_free(n);
    return true;
}

static bool test_node_config_and_plan(void) {
    pdipam_node_config c = {PDIPAM_MODE_PREFIX, 4, 0, 0, 0};
    pdipam_node *n = NULL;
    EXPECT(pdipam_node_new_with("t3.small", &c, &n), PDIPAM_STATUS_OK);
    pdipam_prefix primary = P("10.0.0.10");
    EXPECT(pdipam_node_attach_interface(n, "eni-0", 0, &primary), PDIPAM_STATUS_OK);

    size_t len = 0;
    EXPECT(pdipam_node_plan(n, NULL, 0, &len), PDIPAM_STATUS_BUFFER_TOO_SMALL);
    CHECK(len == 1);
    pdipam_action actions[4];
    EXPECT(pdipam_node_plan(n, actions, 4, &len), PDIPAM_STATUS_OK);
    CHECK(len == 1 && actions[0].kind == PDIPAM_ACTION_ATTACH_PREFIXES && actions[0].count == 1);
    CHECK(strcmp(actions[0].interface_id, "eni-0") == 0);

    /* With WARM_IP_TARGET=5 and MINIMUM_IP_TARGET=20, two prefixes. */
    pdipam_warm_settings w = {1, 5, 20, 0, 0};
    EXPECT(pdipam_node_set_warm_settings(n, &w), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_plan(n, actions, 4, &len), PDIPAM_STATUS_OK);
    CHECK(len == 1 && actions[0].count == 2);
    EXPECT(pdipam_node_plan(n, actions, 4, NULL), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_node_set_warm_settings(n, NULL), PDIPAM_STATUS_NULL_ARG);
    pdipam_node_free(n);

    c.mode = 7;
    EXPECT(pdipam_node_new_with("t3.small", &c, &n), PDIPAM_STATUS_INVALID_ARG);
    c.mode = PDIPAM_MODE_SECONDARY;
    c.family = 5;
    EXPECT(pdipam_node_new_with("t3.small", &c, &n), PDIPAM_STATUS_INVALID_ARG);
    CHECK(last_error_has("family 5"));
    return true;
}

/* Each field of pdipam_node_config reaches the node. */
static bool test_node_config_fields_reach_the_node(void) {
    pdipam_node *n = NULL;
    pdipam_node_stats st;
    pdipam_prefix a;
    pdipam_prefix primary = P("10.0.0.10"), second = P("10.0.0.11");
    pdipam_prefix prefix = P("10.0.1.16/28"), secondary = P("10.0.0.20");

    /* Secondary mode: a secondary address serves pods, a prefix does not. */
    pdipam_node_config c = {PDIPAM_MODE_SECONDARY, 4, 0, 0, 0};
    EXPECT(pdipam_node_new_with("m5.large", &c, &n), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_interface(n, "eni-0", 0, &primary), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_secondary(n, "eni-0", &secondary), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_secondary(n, "eni-0", &secondary), PDIPAM_STATUS_ALREADY_ATTACHED);
    EXPECT(pdipam_node_attach_secondary(n, "eni-0", &prefix), PDIPAM_STATUS_INVALID_ARG);
    EXPECT(pdipam_node_attach_secondary(n, "eni-0", NULL), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_node_get_stats(n, &st), PDIPAM_STATUS_OK);
    CHECK(st.total == 1);
    EXPECT(pdipam_node_assign(n, "aws-cni", "c1", "eth0", &a), PDIPAM_STATUS_OK);
    CHECK(same(a, "10.0.0.20/32"));
    /* The plan asks for secondary addresses, not prefixes: eni-0's eight free slots, and with
     * WARM_ENI_TARGET=1 a spare interface with nine. */
    pdipam_action actions[8];
    size_t len = 0;
    EXPECT(pdipam_node_plan(n, actions, 8, &len), PDIPAM_STATUS_OK);
    CHECK(len == 2 && actions[0].kind == PDIPAM_ACTION_ATTACH_ADDRESSES);
    CHECK(actions[0].count == 8 && strcmp(actions[0].interface_id, "eni-0") == 0);
    CHECK(actions[1].kind == PDIPAM_ACTION_ATTACH_INTERFACE && actions[1].prefixes == 0);
    CHECK(actions[1].device_number == 1 && actions[1].count == 9);
    pdipam_node_free(n);

    /* IPv6: pods get addresses from /80 prefixes. */
    c = (pdipam_node_config){PDIPAM_MODE_PREFIX, 6, 0, 0, 0};
    EXPECT(pdipam_node_new_with("m5.large", &c, &n), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_interface(n, "eni-0", 0, &primary), PDIPAM_STATUS_OK);
    pdipam_prefix v6 = P("2001:db8:1::/80");
    EXPECT(pdipam_node_attach_prefix(n, "eni-0", &v6), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_assign(n, "aws-cni", "c1", "eth0", &a), PDIPAM_STATUS_OK);
    CHECK(same(a, "2001:db8:1::/128"));
    pdipam_node_free(n);

    /* Custom networking: the primary interface serves no pods. */
    c = (pdipam_node_config){PDIPAM_MODE_PREFIX, 4, 1, 0, 0};
    EXPECT(pdipam_node_new_with("m5.large", &c, &n), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_interface(n, "eni-0", 0, &primary), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_prefix(n, "eni-0", &prefix), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_get_stats(n, &st), PDIPAM_STATUS_OK);
    CHECK(st.total == 0);
    EXPECT(pdipam_node_assign(n, "aws-cni", "c1", "eth0", &a),
           PDIPAM_STATUS_NO_AVAILABLE_ADDRESSES);
    pdipam_node_free(n);

    /* MAX_ENI=1: a second interface is one too many. */
    c = (pdipam_node_config){PDIPAM_MODE_PREFIX, 4, 0, 0, 1};
    EXPECT(pdipam_node_new_with("m5.large", &c, &n), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_interface(n, "eni-0", 0, &primary), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_interface(n, "eni-1", 1, &second), PDIPAM_STATUS_TOO_MANY_INTERFACES);
    pdipam_node_free(n);
    return true;
}

/* Trunk, EFA and excluded interfaces hold blocks but serve no pods; an interface's slots run out. */
static bool test_node_interface_flags_and_slots(void) {
    pdipam_node *n = node_with_one_prefix();
    CHECK(n != NULL);
    pdipam_node_stats st;
    pdipam_prefix second = P("10.0.0.11"), third = P("10.0.0.12");
    pdipam_prefix p2 = P("10.0.2.0/28"), p3 = P("10.0.3.0/28");
    EXPECT(pdipam_node_attach_interface_with_flags(n, "eni-2", 1, &second, PDIPAM_INTERFACE_TRUNK),
           PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_prefix(n, "eni-2", &p2), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_interface_with_flags(n, "eni-3", 2, &third, 0), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_prefix(n, "eni-3", &p3), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_get_stats(n, &st), PDIPAM_STATUS_OK);
    CHECK(st.interfaces == 3 && st.total == 32); /* eni-1 and eni-3 */
    EXPECT(pdipam_node_remove_interface(n, "eni-2", 0, NULL), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_interface_with_flags(n, "eni-2", 1, &second, PDIPAM_INTERFACE_EFA),
           PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_prefix(n, "eni-2", &p2), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_get_stats(n, &st), PDIPAM_STATUS_OK);
    CHECK(st.total == 32);
    /* Excluded from pod addresses (or not managed): holds its prefix, serves no pod. */
    EXPECT(pdipam_node_remove_interface(n, "eni-2", 0, NULL), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_interface_with_flags(n, "eni-2", 1, &second, PDIPAM_INTERFACE_EXCLUDED),
           PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_prefix(n, "eni-2", &p2), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_get_stats(n, &st), PDIPAM_STATUS_OK);
    CHECK(st.interfaces == 3 && st.total == 32);

    /* m5.large: ten slots per interface, the primary address in one, nine prefixes. */
    char text[32];
    for (int i = 1; i < 9; i++) {
        snprintf(text, sizeof text, "10.0.3.%d/28", 16 * i);
        pdipam_prefix p = P(text);
        EXPECT(pdipam_node_attach_prefix(n, "eni-3", &p), PDIPAM_STATUS_OK);
    }
    pdipam_prefix tenth = P("10.0.4.0/28");
    EXPECT(pdipam_node_attach_prefix(n, "eni-3", &tenth), PDIPAM_STATUS_NO_FREE_SLOT);
    CHECK(last_error_has("eni-3"));
    EXPECT(pdipam_node_verify(n), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_verify(NULL), PDIPAM_STATUS_NULL_ARG);
    pdipam_node_free(n);
    return true;
}

/* A block or interface with an address cooling down is not removed unless forced. */
static bool test_node_cooling_blocks_stay(void) {
    pdipam_node *n = node_with_one_prefix();
    CHECK(n != NULL);
    pdipam_prefix second = P("10.0.0.11"), p2 = P("10.0.2.0/28"), a;
    EXPECT(pdipam_node_attach_interface(n, "eni-2", 1, &second), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_prefix(n, "eni-2", &p2), PDIPAM_STATUS_OK);
    pdipam_prefix first = P("10.0.1.16/28");
    size_t dropped = 0;
    EXPECT(pdipam_node_remove_block(n, &first, 1, &dropped), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_assign(n, "aws-cni", "c1", "eth0", &a), PDIPAM_STATUS_OK);
    CHECK(same(a, "10.0.2.0/32"));
    EXPECT(pdipam_node_release(n, "aws-cni", "c1", "eth0", &a), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_remove_block(n, &p2, 0, NULL), PDIPAM_STATUS_COOLING);
    EXPECT(pdipam_node_remove_interface(n, "eni-2", 0, NULL), PDIPAM_STATUS_COOLING);
    CHECK(last_error_has("eni-2"));
    EXPECT(pdipam_node_remove_interface(n, "eni-2", 1, NULL), PDIPAM_STATUS_OK);
    pdipam_node_free(n);
    return true;
}

/* Plans with every kind of action, each field filled in. */
static bool test_node_plan_actions(void) {
    pdipam_node *n = node_with_one_prefix();
    CHECK(n != NULL);
    pdipam_action actions[8];
    size_t len = 0;
    /* Three prefixes with no pods and WARM_PREFIX_TARGET=1: two are released. */
    pdipam_prefix p2 = P("10.0.2.0/28"), p3 = P("10.0.3.0/28");
    EXPECT(pdipam_node_attach_prefix(n, "eni-1", &p2), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_prefix(n, "eni-1", &p3), PDIPAM_STATUS_OK);
    pdipam_warm_settings w = {0, 0, 0, 1, 0};
    EXPECT(pdipam_node_set_warm_settings(n, &w), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_plan(n, actions, 8, &len), PDIPAM_STATUS_OK);
    CHECK(len == 2);
    for (size_t i = 0; i < len; i++) {
        CHECK(actions[i].kind == PDIPAM_ACTION_RELEASE_BLOCK);
        CHECK(strcmp(actions[i].interface_id, "eni-1") == 0);
    }
    CHECK(same(actions[0].block, "10.0.3.0/28") || same(actions[0].block, "10.0.2.0/28"));
    CHECK(same(actions[1].block, "10.0.3.0/28") || same(actions[1].block, "10.0.2.0/28"));
    pdipam_node_free(n);

    /* Secondary mode, a t3.small (three interfaces of four addresses): the primary interface
     * full, WARM_ENI_TARGET=1 asks for a second interface with its three addresses. */
    pdipam_node_config c = {PDIPAM_MODE_SECONDARY, 4, 0, 0, 0};
    EXPECT(pdipam_node_new_with("t3.small", &c, &n), PDIPAM_STATUS_OK);
    pdipam_prefix primary = P("10.0.0.10");
    EXPECT(pdipam_node_attach_interface(n, "eni-0", 0, &primary), PDIPAM_STATUS_OK);
    char text[32], id[16];
    pdipam_prefix a;
    for (int i = 0; i < 3; i++) {
        snprintf(text, sizeof text, "10.0.0.%d", 20 + i);
        pdipam_prefix s = P(text);
        EXPECT(pdipam_node_attach_secondary(n, "eni-0", &s), PDIPAM_STATUS_OK);
        snprintf(id, sizeof id, "c%d", i);
        EXPECT(pdipam_node_assign(n, "aws-cni", id, "eth0", &a), PDIPAM_STATUS_OK);
    }
    EXPECT(pdipam_node_plan(n, actions, 8, &len), PDIPAM_STATUS_OK);
    CHECK(len == 1 && actions[0].kind == PDIPAM_ACTION_ATTACH_INTERFACE);
    CHECK(actions[0].device_number == 1 && actions[0].prefixes == 0 && actions[0].count == 3);
    CHECK(actions[0].interface_id[0] == 0);
    pdipam_node_free(n);

    /* The same in prefix mode: the new interface comes with one prefix. */
    c.mode = PDIPAM_MODE_PREFIX;
    EXPECT(pdipam_node_new_with("t3.small", &c, &n), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_attach_interface(n, "eni-0", 0, &primary), PDIPAM_STATUS_OK);
    for (int i = 0; i < 3; i++) {
        snprintf(text, sizeof text, "10.0.%d.0/28", 1 + i);
        pdipam_prefix p = P(text);
        EXPECT(pdipam_node_attach_prefix(n, "eni-0", &p), PDIPAM_STATUS_OK);
    }
    for (int i = 0; i < 48; i++) {
        snprintf(id, sizeof id, "c%d", i);
        EXPECT(pdipam_node_assign(n, "aws-cni", id, "eth0", &a), PDIPAM_STATUS_OK);
    }
    EXPECT(pdipam_node_plan(n, actions, 8, &len), PDIPAM_STATUS_OK);
    CHECK(len == 1 && actions[0].kind == PDIPAM_ACTION_ATTACH_INTERFACE);
    CHECK(actions[0].device_number == 1 && actions[0].prefixes == 1 && actions[0].count == 1);
    pdipam_node_free(n);
    return true;
}

static bool test_max_pods(void) {
    uint32_t m = 0;
    EXPECT(pdipam_max_pods("m5.large", NULL, &m), PDIPAM_STATUS_OK);
    CHECK(m == 29);
    pdipam_max_pods_options o = {1, 0, 0, 0};
    EXPECT(pdipam_max_pods("m5.large", &o, &m), PDIPAM_STATUS_OK);
    CHECK(m == 110);
    o.show_max_allowed = 1;
    EXPECT(pdipam_max_pods("m5.large", &o, &m), PDIPAM_STATUS_OK);
    CHECK(m == 434);
    EXPECT(pdipam_max_pods("m5.lage", NULL, &m), PDIPAM_STATUS_UNKNOWN_INSTANCE_TYPE);
    CHECK(last_error_has("m5.large")); /* the suggestion */
    EXPECT(pdipam_max_pods("m5.large", NULL, NULL), PDIPAM_STATUS_NULL_ARG);
    return true;
}

static bool test_checkpoint_round_trip(void) {
    pdipam_node *n = node_with_one_prefix();
    CHECK(n != NULL);
    pdipam_prefix a;
    EXPECT(pdipam_node_assign(n, "aws-cni", "c1", "eth0", &a), PDIPAM_STATUS_OK);
    char path[64];
    snprintf(path, sizeof path, "/tmp/pdipam-c-test-%d.json", (int)getpid());
    EXPECT(pdipam_node_save(n, path), PDIPAM_STATUS_OK);
    pdipam_node_free(n);

    pdipam_node *back = NULL;
    size_t quarantined = 9;
    EXPECT(pdipam_node_load(path, &quarantined, &back), PDIPAM_STATUS_OK);
    CHECK(quarantined == 0);
    pdipam_prefix again;
    EXPECT(pdipam_node_assign(back, "aws-cni", "c1", "eth0", &again), PDIPAM_STATUS_OK);
    CHECK(memcmp(&a, &again, sizeof a) == 0);
    pdipam_node_free(back);

    /* A corrupt file: one byte changed. */
    FILE *f = fopen(path, "r+");
    CHECK(f != NULL);
    fseek(f, -20, SEEK_END);
    fputc('#', f);
    fclose(f);
    back = NULL;
    EXPECT(pdipam_node_load(path, NULL, &back), PDIPAM_STATUS_CHECKPOINT_CORRUPT);
    CHECK(back == NULL && last_error_has(path));
    remove(path);
    EXPECT(pdipam_node_load(path, NULL, &back), PDIPAM_STATUS_IO);
    EXPECT(pdipam_node_load(NULL, NULL, &back), PDIPAM_STATUS_NULL_ARG);
    return true;
}

static bool test_node_reports_a_prefix_mode_fallback(void) {
    uint8_t mode = 9, fallback = 9;
    pdipam_node *n = NULL;
    /* m4.xlarge runs on Xen: prefix mode falls back to secondary addresses, and says so. */
    EXPECT(pdipam_node_new("m4.xlarge", &n), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_get_mode(n, &mode, &fallback), PDIPAM_STATUS_OK);
    CHECK(mode == PDIPAM_MODE_SECONDARY && fallback == PDIPAM_FALLBACK_NOT_NITRO);
    EXPECT(pdipam_node_get_mode(n, NULL, &fallback), PDIPAM_STATUS_NULL_ARG);
    CHECK(last_error_has("mode_out"));
    pdipam_node_free(n);
    EXPECT(pdipam_node_new("m5.large", &n), PDIPAM_STATUS_OK);
    EXPECT(pdipam_node_get_mode(n, &mode, &fallback), PDIPAM_STATUS_OK);
    CHECK(mode == PDIPAM_MODE_PREFIX && fallback == PDIPAM_FALLBACK_NONE);
    pdipam_node_free(n);
    return true;
}

/* The defragmentation planner on the /26 of the Rust tests, worked out by hand: the subnet's
 * five reserved addresses pin the first and last /28s; an idle address sits in the second, a
 * pod's in the third. */
static pdipam_defrag_holder H(const char *text, uint8_t pin, uint32_t pods, uint32_t interfaces) {
    pdipam_defrag_holder h = {P(text), pin, pods, interfaces};
    return h;
}

static bool test_defrag_plan(void) {
    pdipam_prefix subnet = P("10.0.0.0/26");
    pdipam_defrag_holder hs[] = {
        H("10.0.0.0", PDIPAM_PIN_SUBNET_RESERVED, 0, 0), H("10.0.0.1", PDIPAM_PIN_SUBNET_RESERVED, 0, 0),
        H("10.0.0.2", PDIPAM_PIN_SUBNET_RESERVED, 0, 0), H("10.0.0.3", PDIPAM_PIN_SUBNET_RESERVED, 0, 0),
        H("10.0.0.63", PDIPAM_PIN_SUBNET_RESERVED, 0, 0), H("10.0.0.20", PDIPAM_PIN_NONE, 0, 0),
        H("10.0.0.40", PDIPAM_PIN_NONE, 1, 0), H("10.0.0.50", PDIPAM_PIN_NONE, 3, 1),
    };
    size_t n = sizeof hs / sizeof hs[0];
    pdipam_defrag_plan *plan = NULL;
    EXPECT(pdipam_defrag_plan_new(&subnet, hs, n, NULL, 0, 2, 28, &plan), PDIPAM_STATUS_OK);
    pdipam_defrag_totals t;
    EXPECT(pdipam_defrag_plan_totals(plan, &t), PDIPAM_STATUS_OK);
    CHECK(t.met && t.after == 2 && t.steps == 2 && t.pods == 1 && t.interfaces == 0 && t.reservations == 2);
    CHECK(t.room_needed == 1 && t.room_available == 26);
    pdipam_defrag_step step;
    pdipam_defrag_holder moved;
    EXPECT(pdipam_defrag_plan_step(plan, 0, &step), PDIPAM_STATUS_OK);
    CHECK(same(step.region, "10.0.0.16/28") && step.moves == 1 && step.blocks == 1);
    EXPECT(pdipam_defrag_plan_move(plan, 0, 0, &moved), PDIPAM_STATUS_OK);
    CHECK(same(moved.held, "10.0.0.20/32") && moved.pin == PDIPAM_PIN_NONE && moved.pods == 0);
    EXPECT(pdipam_defrag_plan_step(plan, 1, &step), PDIPAM_STATUS_OK);
    CHECK(same(step.region, "10.0.0.32/28") && step.pods == 1);
    EXPECT(pdipam_defrag_plan_step(plan, 2, &step), PDIPAM_STATUS_INVALID_ARG);
    CHECK(last_error_has("step 2"));
    EXPECT(pdipam_defrag_plan_move(plan, 0, 1, &moved), PDIPAM_STATUS_INVALID_ARG);
    EXPECT(pdipam_defrag_plan_totals(plan, NULL), PDIPAM_STATUS_NULL_ARG);
    pdipam_defrag_plan_free(plan);

    /* Three cannot be had: two reached, and the pinned holders named. */
    EXPECT(pdipam_defrag_plan_new(&subnet, hs, n, NULL, 0, 3, 28, &plan), PDIPAM_STATUS_OK);
    EXPECT(pdipam_defrag_plan_totals(plan, &t), PDIPAM_STATUS_OK);
    CHECK(!t.met && t.after == 2 && t.pinned == 5);
    pdipam_defrag_holder pinned;
    EXPECT(pdipam_defrag_plan_pinned(plan, 4, &pinned), PDIPAM_STATUS_OK);
    CHECK(same(pinned.held, "10.0.0.63/32") && pinned.pin == PDIPAM_PIN_SUBNET_RESERVED);
    pdipam_defrag_plan_free(plan);

    /* Bad input: named, nothing made. */
    pdipam_defrag_holder outside = H("10.0.1.1", PDIPAM_PIN_NONE, 0, 0);
    plan = NULL;
    EXPECT(pdipam_defrag_plan_new(&subnet, &outside, 1, NULL, 0, 1, 28, &plan), PDIPAM_STATUS_INVALID_ARG);
    CHECK(plan == NULL && last_error_has("10.0.1.1/32 is not inside 10.0.0.0/26"));
    EXPECT(pdipam_defrag_plan_new(&subnet, NULL, 3, NULL, 0, 1, 28, &plan), PDIPAM_STATUS_NULL_ARG);
    pdipam_defrag_plan_free(NULL);
    return true;
}

/* Reconciling with the cloud: the node here runs on the system clock, so what it attached
 * itself stays for a minute; blocks the reconcile added itself can vanish at once. */
static pdipam_cloud_change change_at(const pdipam_cloud_diff *d, size_t i) {
    pdipam_cloud_change c;
    memset(&c, 0, sizeof c);
    if (pdipam_cloud_diff_change(d, i, &c) != PDIPAM_STATUS_OK) c.kind = 255;
    return c;
}

static bool test_node_reconcile(void) {
    pdipam_node *n = node_with_one_prefix(); /* eni-1, device 0: 10.0.1.16/28 */
    CHECK(n != NULL);
    pdipam_prefix eni1_prefixes[] = {P("10.0.1.16/28"), P("10.0.3.0/28")};
    pdipam_prefix eni2_prefixes[] = {P("10.0.2.0/28"), P("10.0.2.8/28")};
    pdipam_prefix eni2_addresses[] = {P("10.0.0.20"), P("10.0.0.21")};
    pdipam_observed_interface report[] = {
        {"eni-1", 0, PDIPAM_INTERFACE_PRIMARY, P("10.0.0.10"), eni1_prefixes, 2, NULL, 0},
        {"eni-2", 1, 0, P("10.0.0.20"), eni2_prefixes, 2, eni2_addresses, 2},
    };
    pdipam_cloud_diff *d = NULL;
    EXPECT(pdipam_node_reconcile(n, report, 2, &d), PDIPAM_STATUS_OK);
    size_t len = 0;
    EXPECT(pdipam_cloud_diff_len(d, &len), PDIPAM_STATUS_OK);
    CHECK(len == 5);
    pdipam_cloud_change c = change_at(d, 0);
    CHECK(c.kind == PDIPAM_CHANGE_ADDED_INTERFACE && strcmp(c.interface_id, "eni-2") == 0 && !c.has_block);
    c = change_at(d, 1);
    CHECK(c.kind == PDIPAM_CHANGE_ADDED_BLOCK && strcmp(c.interface_id, "eni-1") == 0);
    CHECK(c.has_block && same(c.block, "10.0.3.0/28"));
    c = change_at(d, 2);
    CHECK(c.kind == PDIPAM_CHANGE_ADDED_BLOCK && same(c.block, "10.0.2.0/28"));
    c = change_at(d, 3); /* the primary address listed among the addresses is skipped */
    CHECK(c.kind == PDIPAM_CHANGE_ADDED_BLOCK && same(c.block, "10.0.0.21/32"));
    c = change_at(d, 4);
    CHECK(c.kind == PDIPAM_CHANGE_REFUSED && c.status == PDIPAM_STATUS_MISALIGNED);
    CHECK(strcmp(c.interface_id, "eni-2") == 0 && same(c.block, "10.0.2.8/28"));
    char text[256];
    size_t text_len = 0;
    EXPECT(pdipam_cloud_diff_message(d, 4, text, sizeof text, &text_len), PDIPAM_STATUS_OK);
    CHECK(strstr(text, "10.0.2.8/28") != NULL && strlen(text) == text_len);
    EXPECT(pdipam_cloud_diff_message(d, 0, text, sizeof text, &text_len), PDIPAM_STATUS_INVALID_ARG);
    CHECK(last_error_has("not a refusal"));
    EXPECT(pdipam_cloud_diff_change(d, 5, &c), PDIPAM_STATUS_INVALID_ARG);
    CHECK(last_error_has("change 5: the diff has 5"));
    pdipam_cloud_diff_free(d);

    /* 17 pods: the 17th lands on 10.0.3.0/28, which then vanishes from the report. */
    char container[16];
    pdipam_prefix a;
    for (int i = 0; i < 17; i++) {
        snprintf(container, sizeof container, "c%d", i);
        EXPECT(pdipam_node_assign(n, "aws-cni", container, "eth0", &a), PDIPAM_STATUS_OK);
    }
    CHECK(same(a, "10.0.3.0"));
    report[0].prefixes_len = 1;
    EXPECT(pdipam_node_reconcile(n, report, 2, &d), PDIPAM_STATUS_OK);
    EXPECT(pdipam_cloud_diff_len(d, &len), PDIPAM_STATUS_OK);
    CHECK(len == 3); /* removed, quarantined, and the misaligned prefix again */
    c = change_at(d, 0);
    CHECK(c.kind == PDIPAM_CHANGE_REMOVED_BLOCK && same(c.block, "10.0.3.0/28"));
    c = change_at(d, 1);
    CHECK(c.kind == PDIPAM_CHANGE_QUARANTINED && same(c.block, "10.0.3.0") && c.interface_id[0] == 0);
    EXPECT(pdipam_cloud_diff_pod_key(d, 1, 1, text, sizeof text, &text_len), PDIPAM_STATUS_OK);
    CHECK(strcmp(text, "c16") == 0 && text_len == 3);
    EXPECT(pdipam_cloud_diff_pod_key(d, 1, 0, text, 3, &text_len), PDIPAM_STATUS_BUFFER_TOO_SMALL);
    CHECK(text_len == 7); /* "aws-cni" */
    EXPECT(pdipam_cloud_diff_pod_key(d, 1, 3, text, sizeof text, &text_len), PDIPAM_STATUS_INVALID_ARG);
    EXPECT(pdipam_cloud_diff_pod_key(d, 0, 1, text, sizeof text, &text_len), PDIPAM_STATUS_INVALID_ARG);
    pdipam_cloud_diff_free(d);
    /* The quarantined pod keeps its address until released. */
    EXPECT(pdipam_node_assign(n, "aws-cni", "c16", "eth0", &a), PDIPAM_STATUS_KEY_CONFLICT);
    EXPECT(pdipam_node_release(n, "aws-cni", "c16", "eth0", &a), PDIPAM_STATUS_OK);
    CHECK(same(a, "10.0.3.0"));

    /* What the node attached itself is kept while the report lags; what it gave back is not
     * taken again. */
    size_t dropped = 9;
    EXPECT(pdipam_node_remove_block(n, &eni2_addresses[1], 0, &dropped), PDIPAM_STATUS_OK);
    CHECK(dropped == 0);
    report[1].prefixes_len = 1; /* drop the misaligned one */
    report[0].prefixes_len = 0; /* 10.0.1.16/28 not shown yet */
    EXPECT(pdipam_node_reconcile(n, report, 2, &d), PDIPAM_STATUS_OK);
    EXPECT(pdipam_cloud_diff_len(d, &len), PDIPAM_STATUS_OK);
    CHECK(len == 2);
    c = change_at(d, 0);
    CHECK(c.kind == PDIPAM_CHANGE_IGNORED_GIVEN_BACK && same(c.block, "10.0.0.21/32"));
    c = change_at(d, 1);
    CHECK(c.kind == PDIPAM_CHANGE_AWAITING_REPORT && same(c.block, "10.0.1.16/28"));
    pdipam_cloud_diff_free(d);
    EXPECT(pdipam_node_verify(n), PDIPAM_STATUS_OK);

    /* Bad input changes nothing. */
    pdipam_observed_interface bad = report[1];
    bad.flags = 0x100;
    d = NULL;
    EXPECT(pdipam_node_reconcile(n, &bad, 1, &d), PDIPAM_STATUS_INVALID_ARG);
    CHECK(d == NULL && last_error_has("0x100"));
    bad = report[1];
    bad.prefixes = NULL;
    EXPECT(pdipam_node_reconcile(n, &bad, 1, &d), PDIPAM_STATUS_NULL_ARG);
    CHECK(last_error_has("prefixes"));
    EXPECT(pdipam_node_reconcile(n, NULL, 1, &d), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_node_reconcile(n, report, 2, NULL), PDIPAM_STATUS_NULL_ARG);
    EXPECT(pdipam_cloud_diff_len(NULL, &len), PDIPAM_STATUS_NULL_ARG);
    pdipam_cloud_diff_free(NULL);
    pdipam_node_free(n);
    return true;
}

int main(void) {
    struct {
        const char *name;
        bool (*run)(void);
    } tests[] = {
        {"abi_version_matches_header", test_abi_version_matches_header},
        {"status_str_takes_any_integer", test_status_str_takes_any_integer},
        {"prefix_parse_and_format", test_prefix_parse_and_format},
        {"prefix_errors", test_prefix_errors},
        {"last_error_buffer", test_last_error_buffer},
        {"subnet_allocates_and_refuses", test_subnet_allocates_and_refuses},
        {"subnet_fragmentation_is_explained", test_subnet_fragmentation_is_explained},
        {"subnet_options_and_reservations", test_subnet_options_and_reservations},
        {"ipv6_subnet", test_ipv6_subnet},
        {"node_assigns_idempotently_and_releases", test_node_assigns_idempotently_and_releases},
        {"node_errors", test_node_errors},
        {"node_config_and_plan", test_node_config_and_plan},
        {"node_config_fields_reach_the_node", test_node_config_fields_reach_the_node},
        {"node_interface_flags_and_slots", test_node_interface_flags_and_slots},
        {"node_cooling_blocks_stay", test_node_cooling_blocks_stay},
        {"node_plan_actions", test_node_plan_actions},
        {"node_reports_a_prefix_mode_fallback", test_node_reports_a_prefix_mode_fallback},
        {"max_pods", test_max_pods},
        {"checkpoint_round_trip", test_checkpoint_round_trip},
        {"defrag_plan", test_defrag_plan},
        {"node_reconcile", test_node_reconcile},
    };
    size_t count = sizeof tests / sizeof tests[0];
    for (size_t i = 0; i < count; i++) {
        bool ok = tests[i].run();
        printf("%s %s\n", ok ? "ok  " : "FAIL", tests[i].name);
        failures += !ok;
    }
    printf("%zu tests, %d failed\n", count, failures);
    return failures == 0 ? 0 : 1;
}
