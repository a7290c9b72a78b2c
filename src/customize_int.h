/* customize_int: what the customize_*.c files share and nobody else may use. */
#ifndef PHX_CUSTOMIZE_INT_H
#define PHX_CUSTOMIZE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "customize.h"

struct cust_op {
	enum cust_op_kind kind;
	char **args; /* owned: package/unit names, .deb paths, {command}, {path[, source]}, {tz} */
	size_t nargs;
	void *data; /* owned: file content (CUST_OP_FILE from content), else NULL */
	size_t len;
	unsigned mode; /* CUST_OP_FILE */
	char *desc;    /* owned: one-line description for logs */
};

struct cust_plan {
	struct cust_op *ops; /* owned */
	size_t n, alloc;
};

/* Borrowed; valid until the plan is freed. */
const struct cust_op *cust_plan_op(const struct cust_plan *plan, size_t i);

bool cust_valid_package(const char *s);
bool cust_valid_unit(const char *s);
bool cust_valid_guest_path(const char *s);
bool cust_valid_timezone(const char *s);

/* AUTO: KVM when /dev/kvm opens and a kernel boots under it (cust_accel_probe_kvm), the
 * verdict cached per host boot in state_dir/kvm-probe (state_dir may be NULL). */
int cust_accel_decide(enum cust_accel want, const char *qemu, const char *state_dir, bool *ret_kvm,
		      struct phx_err *err);

#define CUST_MIB (1024ULL * 1024ULL)

#endif
