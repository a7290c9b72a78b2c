/* image_info: what a disk image file is, read from its header (see image.h). */
#include "image.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int img_disk_info(const char *path, const char **ret_format, uint64_t *ret_size,
		  struct phx_err *err)
{
	unsigned char h[32];
	FILE *f = fopen(path, "rb");
	size_t n;
	int rc = 0;

	if (!f)
		return phx_err_set_errno(err, PHX_E_IO, errno, "open '%s'", path);
	n = fread(h, 1, sizeof(h), f);
	if (n == sizeof(h) && !memcmp(h, "QFI\xfb", 4)) {
		/* qcow2: the virtual size is a big-endian u64 at offset 24 */
		*ret_format = "qcow2";
		*ret_size = 0;
		for (int i = 24; i < 32; i++)
			*ret_size = *ret_size << 8 | h[i];
	} else if (n >= 4 && !memcmp(h, "KDMV", 4)) {
		/* sparse VMDK: the capacity in 512-byte sectors, little-endian u64 at 12 */
		*ret_format = "vmdk";
		*ret_size = 0;
		for (int i = 19; i >= 12; i--)
			*ret_size = *ret_size << 8 | h[i];
		*ret_size *= 512;
	} else if (fseeko(f, 0, SEEK_END) == 0 && ftello(f) >= 0) {
		*ret_format = "raw";
		*ret_size = (uint64_t)ftello(f);
	} else {
		rc = phx_err_set_errno(err, PHX_E_IO, errno, "read '%s'", path);
	}
	fclose(f);
	return rc;
}
