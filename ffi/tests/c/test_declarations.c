/* The declarations the C ABI promises, written exactly as promised: C accepts a redeclaration
 * only when it is compatible with the header's, so this file compiles only if they match. */
#include "pdipam.h"

typedef struct pdipam_prefix pdipam_prefix;
pdipam_status pdipam_prefix_parse(const char *text, pdipam_prefix *prefix_out);
pdipam_status pdipam_prefix_format(const pdipam_prefix *prefix, char *buf, size_t buf_len, size_t *len_out);
pdipam_status pdipam_subnet_new(const pdipam_prefix *cidr, pdipam_subnet **subnet_out);
void          pdipam_subnet_free(pdipam_subnet *subnet);
pdipam_status pdipam_subnet_alloc_prefix(const pdipam_subnet *subnet, uint8_t len, pdipam_prefix *prefix_out);
pdipam_status pdipam_subnet_alloc_prefix_at(const pdipam_subnet *subnet, const pdipam_prefix *prefix);
pdipam_status pdipam_subnet_alloc_ip(const pdipam_subnet *subnet, pdipam_prefix *addr_out);
pdipam_status pdipam_subnet_release(const pdipam_subnet *subnet, const pdipam_prefix *prefix);
pdipam_status pdipam_node_new(const char *instance_type, pdipam_node **node_out);
void          pdipam_node_free(pdipam_node *node);
pdipam_status pdipam_node_attach_interface(const pdipam_node *node, const char *interface_id,
                                           uint32_t device_number, const pdipam_prefix *primary_addr);
pdipam_status pdipam_node_attach_prefix(const pdipam_node *node, const char *interface_id,
                                        const pdipam_prefix *prefix);
pdipam_status pdipam_node_assign(const pdipam_node *node, const char *network, const char *container_id,
                                 const char *ifname, pdipam_prefix *addr_out);
pdipam_status pdipam_node_release(const pdipam_node *node, const char *network, const char *container_id,
                                  const char *ifname, pdipam_prefix *addr_out);
const char   *pdipam_status_str(pdipam_status status);
uint32_t      pdipam_abi_version(void);

_Static_assert(sizeof(pdipam_prefix) == 18, "family, len, 16 address bytes");
_Static_assert(PDIPAM_STATUS_OK == 0, "OK is 0");
_Static_assert(sizeof(pdipam_status) == 4, "a fixed-width status");

int main(void) { return pdipam_abi_version() == 0 ? 1 : 0; }
