/* Unit tests for buf: appends, printf, the size cap, detach and release. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

Test(buf, empty_buffer_reads_as_empty_string)
{
	struct buf b = BUF_INIT;

	cr_assert_str_eq(buf_str(&b), "");
	buf_release(&b);
	buf_release(&b); /* releasing twice is harmless */
}

Test(buf, appends_and_formats)
{
	struct buf b = BUF_INIT;
	struct phx_err err = PHX_ERR_INIT;

	cr_assert_eq(buf_puts(&b, "vm ", &err), 0);
	cr_assert_eq(buf_printf(&b, &err, "%d/%s", 8001, "web"), 0);
	cr_assert_eq(buf_append(&b, "\0x", 2, &err), 0);
	cr_assert_eq(b.len, 13);
	cr_assert_str_eq(buf_str(&b), "vm 8001/web");
	cr_assert_eq(b.data[12], 'x');
	cr_assert_eq(b.data[13], '\0');
	buf_reset(&b);
	cr_assert_str_eq(buf_str(&b), "");
	buf_release(&b);
}

Test(buf, grows_past_the_first_allocation)
{
	struct buf b = BUF_INIT;
	struct phx_err err = PHX_ERR_INIT;

	for (int i = 0; i < 1000; i++)
		cr_assert_eq(buf_puts(&b, "0123456789", &err), 0);
	cr_assert_eq(b.len, 10000);
	cr_assert_eq(strncmp(buf_str(&b) + 9990, "0123456789", 10), 0);
	buf_release(&b);
}

Test(buf, cap_is_enforced_and_contents_kept)
{
	struct buf b;
	struct phx_err err = PHX_ERR_INIT;

	buf_init(&b, 16);
	cr_assert_eq(buf_puts(&b, "0123456789", &err), 0);
	cr_assert_eq(buf_puts(&b, "abcdef", &err), 0); /* exactly 16 */
	cr_assert_eq(buf_puts(&b, "X", &err), -1);
	cr_assert_eq(err.code, PHX_E_RUNTIME);
	cr_assert(strstr(err.msg, "16"), "%s", err.msg);
	cr_assert_str_eq(buf_str(&b), "0123456789abcdef");
	cr_assert_eq(b.len, 16);
	buf_release(&b);
}

Test(buf, printf_respects_the_cap)
{
	struct buf b;
	struct phx_err err = PHX_ERR_INIT;

	buf_init(&b, 8);
	cr_assert_eq(buf_printf(&b, &err, "%s", "123456789"), -1);
	cr_assert_eq(err.code, PHX_E_RUNTIME);
	cr_assert_eq(b.len, 0);
	buf_release(&b);
}

Test(buf, huge_append_is_refused_without_overflow)
{
	struct buf b;
	struct phx_err err = PHX_ERR_INIT;

	buf_init(&b, 0); /* default cap */
	cr_assert_eq(buf_append(&b, "x", (size_t)-1, &err), -1);
	cr_assert_eq(err.code, PHX_E_RUNTIME);
	buf_release(&b);
}

Test(buf, detach_hands_over_the_storage)
{
	struct buf b = BUF_INIT;
	struct phx_err err = PHX_ERR_INIT;
	char *s;

	s = buf_detach(&b);
	cr_assert_str_eq(s, "");
	free(s);
	buf_puts(&b, "owned", &err);
	s = buf_detach(&b);
	cr_assert_str_eq(s, "owned");
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);
	free(s);
	buf_release(&b);
}
