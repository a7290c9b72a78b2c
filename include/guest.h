/* guest: waiting for a started VM's guest agent and reading its address, the one way deploy
 * and --validate do it. Polls with backoff (fast at first, capped) within a deadline; an
 * agent that never answers is PHX_E_TIMEOUT with Proxmox's last answer, which the caller
 * wraps with its own hint. Auth and permission errors end the wait at once. Each wait shows
 * its elapsed time (progress.h prog_wait: a live line on a TTY, else a log line every 30 s). */
#ifndef PHX_GUEST_H
#define PHX_GUEST_H

#include <stddef.h>

#include "err.h"
#include "pve.h"

/* Polls agent/ping until it answers or timeout_s passed. The PHX_E_TIMEOUT message is
 * "VM N: the guest agent did not answer within T s (last answer: ...): HINT". */
int guest_wait_agent(struct pve_client *c, const char *node, int vmid, double timeout_s,
		     const char *hint, struct phx_err *err);
/* Polls agent/network-get-interfaces until an IPv4 address shows on the NIC with `mac` (else
 * the first that is not loopback; see deploy_pick_ipv4) or timeout_s passed. false with
 * ret_ip "" when none showed; *ret_last (may be NULL) gets the last error text then. */
bool guest_wait_ipv4(struct pve_client *c, const char *node, int vmid, const char *mac,
		     double timeout_s, char *ret_ip, size_t ip_len, struct phx_err *ret_last);

/* Runs argv (NULL-terminated) in the guest through the agent's exec and polls exec-status
 * until it ends or timeout_s passed (PHX_E_TIMEOUT). *ret_code: its exit status (128 + the
 * signal when killed); ret_out: stdout then stderr, cut to out_len. */
int guest_exec(struct pve_client *c, const char *node, int vmid, const char *const *argv,
	       long timeout_s, int *ret_code, char *ret_out, size_t out_len, struct phx_err *err);

#endif
