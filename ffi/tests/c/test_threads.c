/* Four threads allocate and release on one subnet and one node at once; every address any
 * thread holds at a moment is recorded, and none may be held twice. */
#include "pdipam.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define THREADS 4
#define ROUNDS 2000

static pdipam_subnet *subnet;
static pdipam_node *node;
/* Owner (thread + 1) of each address of 10.0.0.0/22 and of each of the node's 64 addresses. */
static atomic_int subnet_owner[1024];
static atomic_int node_owner[64];
static atomic_int duplicates;
static atomic_int errors;

static void take(atomic_int *slot, int me) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(slot, &expected, me)) atomic_fetch_add(&duplicates, 1);
}

static void give(atomic_int *slot, int me) {
    int expected = me;
    if (!atomic_compare_exchange_strong(slot, &expected, 0)) atomic_fetch_add(&errors, 1);
}

#define HELD 8

static int subnet_slot(const pdipam_prefix *p) { return p->addr[2] * 256 + p->addr[3]; }
static int node_slot(const pdipam_prefix *p) { return p->addr[3] - 16; }

/* Each thread holds up to HELD /30s, HELD addresses and HELD pods at a time, releasing the
 * oldest as it takes a new one, so many addresses are held at once by all threads. */
static void *worker(void *arg) {
    int me = (int)(size_t)arg + 1;
    pdipam_prefix prefixes[HELD], ips[HELD], pods[HELD];
    char ids[HELD][32];
    for (int round = 0; round < ROUNDS; round++) {
        int k = round % HELD;
        if (round >= HELD) {
            for (int i = 0; i < 4; i++) give(&subnet_owner[subnet_slot(&prefixes[k]) + i], me);
            if (pdipam_subnet_release(subnet, &prefixes[k]) != PDIPAM_STATUS_OK) atomic_fetch_add(&errors, 1);
            give(&subnet_owner[subnet_slot(&ips[k])], me);
            if (pdipam_subnet_release(subnet, &ips[k]) != PDIPAM_STATUS_OK) atomic_fetch_add(&errors, 1);
            give(&node_owner[node_slot(&pods[k])], me);
            pdipam_prefix back;
            if (pdipam_node_release(node, "net", ids[k], "eth0", &back) != PDIPAM_STATUS_OK ||
                memcmp(&back, &pods[k], sizeof back) != 0)
                atomic_fetch_add(&errors, 1);
        }
        if (pdipam_subnet_alloc_prefix(subnet, 30, &prefixes[k]) != PDIPAM_STATUS_OK ||
            pdipam_subnet_alloc_ip(subnet, &ips[k]) != PDIPAM_STATUS_OK) {
            atomic_fetch_add(&errors, 1);
            return NULL;
        }
        for (int i = 0; i < 4; i++) take(&subnet_owner[subnet_slot(&prefixes[k]) + i], me);
        take(&subnet_owner[subnet_slot(&ips[k])], me);
        snprintf(ids[k], sizeof ids[k], "t%d-%d", me, round);
        if (pdipam_node_assign(node, "net", ids[k], "eth0", &pods[k]) != PDIPAM_STATUS_OK) {
            atomic_fetch_add(&errors, 1);
            return NULL;
        }
        take(&node_owner[node_slot(&pods[k])], me);
    }
    /* Give everything back. */
    for (int k = 0; k < HELD; k++) {
        for (int i = 0; i < 4; i++) give(&subnet_owner[subnet_slot(&prefixes[k]) + i], me);
        give(&subnet_owner[subnet_slot(&ips[k])], me);
        give(&node_owner[node_slot(&pods[k])], me);
        pdipam_prefix back;
        if (pdipam_subnet_release(subnet, &prefixes[k]) != PDIPAM_STATUS_OK ||
            pdipam_subnet_release(subnet, &ips[k]) != PDIPAM_STATUS_OK ||
            pdipam_node_release(node, "net", ids[k], "eth0", &back) != PDIPAM_STATUS_OK)
            atomic_fetch_add(&errors, 1);
    }
    return NULL;
}

int main(void) {
    pdipam_prefix cidr, primary, prefix;
    if (pdipam_prefix_parse("10.0.0.0/22", &cidr) != PDIPAM_STATUS_OK) return 2;
    if (pdipam_subnet_new(&cidr, &subnet) != PDIPAM_STATUS_OK) return 2;
    pdipam_node_config config = {PDIPAM_MODE_PREFIX, 4, 0, 0, 0}; /* no cooldown: fast reuse */
    if (pdipam_node_new_with("m5.large", &config, &node) != PDIPAM_STATUS_OK) return 2;
    pdipam_prefix_parse("10.1.0.5", &primary);
    if (pdipam_node_attach_interface(node, "eni-0", 0, &primary) != PDIPAM_STATUS_OK) return 2;
    const char *prefixes[] = {"10.1.0.16/28", "10.1.0.32/28", "10.1.0.48/28", "10.1.0.64/28"};
    for (int i = 0; i < 4; i++) {
        pdipam_prefix_parse(prefixes[i], &prefix);
        if (pdipam_node_attach_prefix(node, "eni-0", &prefix) != PDIPAM_STATUS_OK) return 2;
    }
    pthread_t threads[THREADS];
    for (size_t i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, worker, (void *)i);
    for (size_t i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    int ok = atomic_load(&duplicates) == 0 && atomic_load(&errors) == 0 &&
             pdipam_subnet_verify(subnet) == PDIPAM_STATUS_OK &&
             pdipam_node_verify(node) == PDIPAM_STATUS_OK;
    pdipam_subnet_stats st;
    pdipam_subnet_get_stats(subnet, &st);
    ok = ok && st.allocated == 0;
    printf("%d threads x %d rounds: %d addresses held twice, %d errors, %s\n", THREADS, ROUNDS,
           atomic_load(&duplicates), atomic_load(&errors), ok ? "ok" : "FAIL");
    pdipam_node_free(node);
    pdipam_subnet_free(subnet);
    return ok ? 0 : 1;
}
