/* cmd_common: the pure decisions the commands share. */
#include <criterion/criterion.h>
#include <stdbool.h>

#include "cmd.h"

TestSuite(cmd);

/* One version built on three nodes (one name), an older version on pve1, a VM of that name. */
static struct pve_vm_info items[] = {
	{9700, "ct-20261203-001", "pve1", "phoenix", "stopped", true, true},
	{9701, "ct-20261203-001", "pve2", "phoenix", "stopped", true, true},
	{9702, "ct-20261203-001", "pve3", "phoenix", "stopped", true, true},
	{9600, "ct-20261202-001", "pve1", "phoenix", "stopped", true, true},
	{9800, "ct-20261202-001", "pve1", "", "running", false, false},
};
static const struct pve_vm_list vms = {items, sizeof(items) / sizeof(items[0])};

Test(cmd, a_shared_archive_stays_while_another_node_has_a_template_of_that_version)
{
	const struct pve_vm_info *user;

	cr_assert_not(cmd_archive_goes(&vms, 0, NULL, true, &user));
	cr_assert_eq(user, &items[1]);
	/* each node's own copy on local storage goes with its template */
	cr_assert(cmd_archive_goes(&vms, 0, NULL, false, &user));
	cr_assert_null(user);
	/* the only container of its name (the VM of that name has no archive) */
	cr_assert(cmd_archive_goes(&vms, 3, NULL, true, &user));
	cr_assert_null(user);
}

Test(cmd, removing_every_copy_deletes_a_shared_archive_once)
{
	const struct pve_vm_info *user;
	bool all[] = {true, true, true, false, false};
	bool two[] = {true, false, true, false, false};

	cr_assert(cmd_archive_goes(&vms, 0, all, true, &user));
	cr_assert_not(cmd_archive_goes(&vms, 1, all, true, &user));
	cr_assert_null(user, "deleted with 9700's removal, kept for nobody");
	cr_assert_not(cmd_archive_goes(&vms, 2, all, true, &user));
	/* on local storage every node deletes its own */
	for (size_t k = 0; k < 3; k++)
		cr_assert(cmd_archive_goes(&vms, k, all, false, &user));
	/* pve2's copy stays: so does the shared archive */
	cr_assert_not(cmd_archive_goes(&vms, 0, two, true, &user));
	cr_assert_eq(user, &items[1]);
	cr_assert_not(cmd_archive_goes(&vms, 2, two, true, &user));
	cr_assert_eq(user, &items[1]);
}
