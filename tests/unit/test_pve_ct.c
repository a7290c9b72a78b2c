/* Unit tests for the container parsers of pve_ct.c: GET .../lxc/{vmid}/interfaces as
 * pve-container LXC.pm get_interfaces builds it from `ip --json a` (families inet/inet6, the
 * deprecated per-family and hwaddr keys beside the list), and null for a stopped container. */
#include <criterion/criterion.h>
#include <string.h>

#include "deploy.h"
#include "pve_ct.h"

/* The shape of get_interfaces (pve-container src/PVE/LXC.pm) for lo and one veth. */
static const char ifaces[] =
	"[{\"name\":\"lo\",\"hardware-address\":\"00:00:00:00:00:00\",\"hwaddr\":"
	"\"00:00:00:00:00:00\",\"inet\":\"127.0.0.1/8\",\"inet6\":\"::1/128\",\"ip-addresses\":["
	"{\"ip-address-type\":\"inet\",\"ip-address\":\"127.0.0.1\",\"prefix\":8},"
	"{\"ip-address-type\":\"inet6\",\"ip-address\":\"::1\",\"prefix\":128}]},"
	"{\"name\":\"eth0\",\"hardware-address\":\"bc:24:11:5e:00:01\",\"hwaddr\":"
	"\"bc:24:11:5e:00:01\",\"inet\":\"10.0.0.31/24\",\"ip-addresses\":["
	"{\"ip-address-type\":\"inet6\",\"ip-address\":\"fe80::be24:11ff:fe5e:1\",\"prefix\":64},"
	"{\"ip-address-type\":\"inet\",\"ip-address\":\"10.0.0.31\",\"prefix\":24}]}]";

Test(pve_ct, interfaces_list_inet_addresses_only)
{
	struct phx_err err = PHX_ERR_INIT;
	json_t *v = json_loads(ifaces, 0, NULL);
	struct pve_iface_list l;
	char ip[64];
	cr_assert_not_null(v);
	cr_assert_eq(pve_ct_iface_list_parse(v, &l, &err), 0, "%s", err.msg);
	cr_assert_eq(l.n, 2);
	cr_assert_eq(l.items[0].n_ipv4, 1, "inet6 is not listed as IPv4");
	cr_assert_str_eq(l.items[1].mac, "bc:24:11:5e:00:01");
	cr_assert_eq(l.items[1].n_ipv4, 1);
	cr_assert_str_eq(l.items[1].ipv4[0], "10.0.0.31/24");
	/* the address deploy reports: by the NIC's MAC, whatever the case */
	cr_assert(deploy_pick_ipv4(&l, "BC:24:11:5E:00:01", ip, sizeof(ip)));
	cr_assert_str_eq(ip, "10.0.0.31");
	pve_iface_list_release(&l);
	json_decref(v);
}

Test(pve_ct, interfaces_of_a_stopped_container_are_empty)
{
	struct phx_err err = PHX_ERR_INIT;
	struct pve_iface_list l = {(struct pve_iface *)0x1, 7};

	cr_assert_eq(pve_ct_iface_list_parse(json_null(), &l, &err), 0);
	cr_assert_eq(l.n, 0);
}

Test(pve_ct, interfaces_not_a_list_is_api_error)
{
	struct phx_err err = PHX_ERR_INIT;
	struct pve_iface_list l = {NULL, 0};
	json_t *v = json_pack("{ss}", "error", "x");

	cr_assert_eq(pve_ct_iface_list_parse(v, &l, &err), -1);
	cr_assert_eq(err.code, PHX_E_API);
	cr_assert_eq(l.n, 0, "output untouched");
	json_decref(v);
}
