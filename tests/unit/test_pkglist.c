#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkglist.h"

Test(pkglist, parse_sorts_and_rejects_bad_lines)
{
	struct phx_err err = PHX_ERR_INIT;
	struct pkg_list l;
	char *canon = NULL;

	cr_assert_eq(pkg_parse("zlib1g\t1:1.2.13\tamd64\nbash\t5.2.15-2+b2\tamd64\r\n\n", &l, &err),
		     0, "%s", err.msg);
	cr_assert_eq(l.n, 2);
	cr_assert_str_eq(l.items[0].name, "bash");
	cr_assert_str_eq(l.items[0].version, "5.2.15-2+b2");
	cr_assert_str_eq(l.items[1].version, "1:1.2.13");
	pkg_list_release(&l);

	cr_assert_eq(pkg_parse("ok\t1\tall\nbroken 1 all\n", &l, &err), -1);
	cr_assert_eq(err.code, PHX_E_INPUT);
	cr_assert(strstr(err.msg, "line 2: expected 'name<TAB>version<TAB>arch', got 'broken 1 "
				  "all'"),
		  "%s", err.msg);
	phx_err_clear(&err);
	cr_assert_eq(pkg_parse("a\t\tall\n", &l, &err), -1, "an empty version is no package");

	cr_assert_eq(pkg_canonical("b\t2\tall\na\t1\tamd64\n", &canon, &err), 0);
	cr_assert_str_eq(canon, "a\t1\tamd64\nb\t2\tall\n");
	free(canon);
}

Test(pkglist, diff_names_what_changed_was_added_and_removed)
{
	struct phx_err err = PHX_ERR_INIT;
	struct pkg_list a, b;
	struct pkg_delta *d = NULL;
	size_t n = 0;

	cr_assert_eq(pkg_parse("bash\t5.2\tamd64\nlibc6\t2.36-9\tamd64\nlibc6\t2.36-9\ti386\n"
			       "old\t1\tall\n",
			       &a, &err),
		     0);
	cr_assert_eq(pkg_parse("bash\t5.2\tamd64\nlibc6\t2.36-9+deb12u4\tamd64\n"
			       "libc6\t2.36-9\ti386\nnew\t3\tall\n",
			       &b, &err),
		     0);
	cr_assert_eq(pkg_diff(&a, &b, &d, &n, &err), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(d[0].change, PKG_CHANGED);
	cr_assert_str_eq(d[0].name, "libc6");
	cr_assert_str_eq(d[0].arch, "amd64");
	cr_assert_str_eq(d[0].old_version, "2.36-9");
	cr_assert_str_eq(d[0].new_version, "2.36-9+deb12u4");
	cr_assert_eq(d[1].change, PKG_ADDED);
	cr_assert_str_eq(d[1].name, "new");
	cr_assert_null(d[1].old_version);
	cr_assert_eq(d[2].change, PKG_REMOVED);
	cr_assert_str_eq(d[2].name, "old");
	free(d);
	cr_assert_eq(pkg_diff(&a, &a, &d, &n, &err), 0);
	cr_assert_eq(n, 0, "a list has no difference to itself");
	free(d);
	pkg_list_release(&a);
	pkg_list_release(&b);
}

Test(pkglist, summary_counts_lines_and_hashes_the_text)
{
	struct phx_err err = PHX_ERR_INIT;
	char s[128];

	cr_assert_eq(pkg_summary("a\t1\tall\nb\t2\tall\n", s, sizeof(s), &err), 0);
	cr_assert(!strncmp(s, "2 ", 2), "%s", s);
	cr_assert_eq(strlen(s), 2 + 64);
}

Test(pkglist, store_then_load_and_a_missing_list_is_not_found)
{
	struct phx_err err = PHX_ERR_INIT;
	char dir[] = "/tmp/phx-pkg-XXXXXX", *text = NULL;
	const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(pkg_load(dir, sha, &text, &err), -1);
	cr_assert_eq(err.code, PHX_E_NOTFOUND);
	cr_assert(strstr(err.msg, "kept where the image was built"), "%s", err.msg);
	phx_err_clear(&err);
	cr_assert_eq(pkg_store(dir, sha, "a\t1\tall\n", &err), 0, "%s", err.msg);
	cr_assert_eq(pkg_load(dir, sha, &text, &err), 0);
	cr_assert_str_eq(text, "a\t1\tall\n");
	free(text);
	cr_assert_eq(pkg_store(dir, "../etc/passwd", "x", &err), -1, "not a sha: no path");
	{
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		cr_assert_eq(system(cmd), 0);
	}
}
