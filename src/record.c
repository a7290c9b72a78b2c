/* record: build records in descriptions (see record.h). */
#include "record.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"

char *rec_write(const char *intro, const struct rec_field *fields, size_t n, struct phx_err *err)
{
	struct buf b = BUF_INIT;
	char *res;

	if (intro && buf_printf(&b, err, "%s\n", intro) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (buf_printf(&b, err, "%s: %s\n", fields[i].key, fields[i].value) < 0)
			goto fail;
	res = buf_detach(&b);
	if (!res)
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return res;
fail:
	buf_release(&b);
	return NULL;
}

bool rec_get(const char *record, const char *key, char *ret, size_t len)
{
	size_t klen = strlen(key);

	ret[0] = '\0';
	for (const char *p = record; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) || p[klen] != ':' || p[klen + 1] != ' ')
			continue;
		snprintf(ret, len, "%.*s", (int)strcspn(p + klen + 2, "\n"), p + klen + 2);
		return true;
	}
	return false;
}
