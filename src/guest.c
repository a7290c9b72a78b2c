/* guest: agent wait and address (see guest.h). */
#include "guest.h"

#include <stdio.h>

#include "clock.h"
#include "deploy.h"
#include "progress.h"

/* A cloud image boots in 10-60 s: 200 ms growing by half to a 3 s cap keeps the lag after
 * boot small at one cheap request per VM every 3 s. */
#define GUEST_DELAY_FIRST_MS 200
#define GUEST_DELAY_MAX_MS 3000

/* Sleeps the current delay, never past the deadline, and grows it; the wait's line is kept
 * current meanwhile (slices of at most a second). */
static void guest_backoff(double deadline, unsigned *delay, struct prog_wait *w)
{
	double left_ms = (deadline - clk_now()) * 1000;
	unsigned ms = left_ms < *delay ? (unsigned)(left_ms > 0 ? left_ms : 0) + 1 : *delay;

	while (ms > 0 && !clk_signal()) {
		unsigned slice = ms > 1000 ? 1000 : ms;

		clk_sleep_ms(slice);
		ms -= slice;
		prog_wait_tick(w);
	}
	*delay = *delay * 3 / 2 > GUEST_DELAY_MAX_MS ? GUEST_DELAY_MAX_MS : *delay * 3 / 2;
}

int guest_wait_agent(struct pve_client *c, const char *node, int vmid, double timeout_s,
		     const char *hint, struct phx_err *err)
{
	double deadline = clk_now() + timeout_s;
	unsigned delay = GUEST_DELAY_FIRST_MS;
	struct phx_err last = PHX_ERR_INIT;
	struct prog_wait w;
	char what[64];
	int rc;

	snprintf(what, sizeof(what), "waiting for guest agent of %d", vmid);
	prog_wait_start(&w, what);
	for (;;) {
		if (clk_signal()) {
			rc = phx_err_set(err, PHX_E_INTERRUPTED,
					 "stopped by signal %d while waiting for the guest agent "
					 "of VM %d",
					 clk_signal(), vmid);
			break;
		}
		phx_err_clear(&last);
		if (pve_agent_ping(c, node, vmid, &last) == 0) {
			rc = 0;
			break;
		}
		if (last.code == PHX_E_AUTH || last.code == PHX_E_PERM) {
			rc = phx_err_set(err, last.code, "%s", last.msg);
			break;
		}
		if (clk_now() >= deadline) {
			rc = phx_err_set(err, PHX_E_TIMEOUT,
					 "VM %d: the guest agent did not answer within %.0f s (last "
					 "answer: %s): %s",
					 vmid, timeout_s, last.msg, hint);
			break;
		}
		guest_backoff(deadline, &delay, &w);
	}
	prog_wait_end(&w);
	return rc;
}

bool guest_wait_ipv4(struct pve_client *c, const char *node, int vmid, const char *mac,
		     double timeout_s, char *ret_ip, size_t ip_len, struct phx_err *ret_last)
{
	double deadline = clk_now() + timeout_s;
	unsigned delay = GUEST_DELAY_FIRST_MS;
	struct phx_err last = PHX_ERR_INIT;
	struct prog_wait w;
	char what[64];
	bool found = false;

	snprintf(what, sizeof(what), "waiting for an IPv4 address of %d", vmid);
	prog_wait_start(&w, what);
	for (;;) {
		struct pve_iface_list l = {NULL, 0};

		phx_err_clear(&last);
		if (pve_agent_network(c, node, vmid, &l, &last) == 0) {
			found = deploy_pick_ipv4(&l, mac, ret_ip, ip_len);
			pve_iface_list_release(&l);
			if (found)
				break;
		}
		if (clk_now() >= deadline || clk_signal()) {
			ret_ip[0] = '\0';
			if (ret_last)
				*ret_last = last;
			break;
		}
		guest_backoff(deadline, &delay, &w);
	}
	prog_wait_end(&w);
	return found;
}

int guest_exec(struct pve_client *c, const char *node, int vmid, const char *const *argv,
		    long timeout_s, int *ret_code, char *ret_out, size_t out_len,
		    struct phx_err *err)
{
	double start = clk_now();
	long long pid = 0;
	unsigned delay = 200;

	if (pve_agent_exec(c, node, vmid, argv, NULL, &pid, err) < 0)
		return phx_err_wrap(err, "run '%s' in VM %d", argv[0], vmid);
	for (;;) {
		struct pve_exec_status st = {0};

		if (pve_agent_exec_status(c, node, vmid, pid, &st, err) < 0)
			return phx_err_wrap(err, "run '%s' in VM %d", argv[0], vmid);
		if (st.exited) {
			*ret_code = st.signalled ? 128 + st.signal : st.exitcode;
			snprintf(ret_out, out_len, "%s%s", st.out_data ? st.out_data : "",
				 st.err_data ? st.err_data : "");
			pve_exec_status_release(&st);
			return 0;
		}
		pve_exec_status_release(&st);
		if (clk_now() - start > (double)timeout_s)
			return phx_err_set(err, PHX_E_TIMEOUT,
					   "'%s' did not finish in VM %d within %ld s", argv[0],
					   vmid, timeout_s);
		clk_sleep_ms(delay);
		delay = delay * 3 / 2 > 2000 ? 2000 : delay * 3 / 2;
	}
}
