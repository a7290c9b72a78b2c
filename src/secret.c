/* secret: load and wipe the API token secret. */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"

enum { SECRET_MAX = 4096 };

struct phx_secret {
	char *value;
	size_t len;
};

static void secret_chomp(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
}

struct phx_secret *secret_from_string(const char *value, struct phx_err *err)
{
	struct phx_secret *s = calloc(1, sizeof(*s));

	if (!s || !(s->value = strdup(value))) {
		free(s);
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		return NULL;
	}
	secret_chomp(s->value);
	s->len = strlen(s->value);
	if (!s->len) {
		secret_free(s);
		phx_err_set(err, PHX_E_INPUT, "the token secret is empty");
		return NULL;
	}
	for (size_t i = 0; i < s->len; i++) {
		unsigned char c = (unsigned char)s->value[i];

		/* it goes into an HTTP header: CR/LF would inject header lines */
		if (c < 0x20 || c == 0x7f) {
			secret_free(s);
			phx_err_set(err, PHX_E_INPUT,
				    "the token secret contains a control character (byte %zu); a "
				    "Proxmox token secret is a UUID",
				    i + 1);
			return NULL;
		}
	}
	/* no core dump may hold it (a dump of a run had a dozen copies) */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
	return s;
}

/* What a secret file must be, checked on the open file: the one rule --check and every
 * command that reads the secret apply. */
static int secret_file_check_fd(int fd, const char *path, struct stat *ret_st, struct phx_err *err)
{
	uid_t me = geteuid();

	if (fstat(fd, ret_st) < 0)
		return phx_err_set_errno(err, PHX_E_IO, errno, "token secret file '%s'", path);
	if (!S_ISREG(ret_st->st_mode))
		return phx_err_set(err, PHX_E_INPUT, "token secret file '%s': not a regular file",
				   path);
	/* someone else's file could be swapped under us by its owner */
	if (ret_st->st_uid != me && ret_st->st_uid != 0)
		return phx_err_set(err, PHX_E_INPUT,
				   "token secret file '%s': owned by uid %u, not by the user "
				   "running this (uid %u) or root; run 'chown %u %s'",
				   path, (unsigned)ret_st->st_uid, (unsigned)me, (unsigned)me,
				   path);
	if (ret_st->st_mode & (S_IRWXG | S_IRWXO))
		return phx_err_set(err, PHX_E_INPUT,
				   "token secret file '%s': mode %04o lets others read it; run "
				   "'chmod 600 %s'",
				   path, (unsigned)(ret_st->st_mode & 07777), path);
	return 0;
}

static int secret_file_open(const char *path, struct stat *ret_st, struct phx_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0 && errno == ENOENT)
		return phx_err_set(
			err, PHX_E_INPUT,
			"token secret file '%s' does not exist: create it with 'install "
			"-m 600 /dev/null %s' and write the token's secret into it, or set "
			"PVE_TOKEN_SECRET_FILE to the file that has it",
			path, path);
	if (fd < 0)
		return phx_err_set_errno(err, PHX_E_INPUT, errno, "token secret file '%s'", path);
	if (secret_file_check_fd(fd, path, ret_st, err) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int secret_check_file(const char *path, struct phx_err *err)
{
	struct stat st;
	int fd = secret_file_open(path, &st, err);

	if (fd < 0)
		return -1;
	close(fd);
	if (st.st_size == 0)
		return phx_err_set(err, PHX_E_INPUT,
				   "token secret file '%s': the token secret is "
				   "empty",
				   path);
	return 0;
}

struct phx_secret *secret_from_file(const char *path, struct phx_err *err)
{
	char data[SECRET_MAX + 1];
	struct phx_secret *s = NULL;
	struct stat st;
	ssize_t n;
	char *nl;
	int fd = secret_file_open(path, &st, err);

	if (fd < 0)
		return NULL;
	if ((n = read(fd, data, SECRET_MAX + 1)) < 0) {
		phx_err_set_errno(err, PHX_E_IO, errno, "token secret file '%s'", path);
	} else if (n > SECRET_MAX) {
		phx_err_set(err, PHX_E_INPUT, "token secret file '%s': larger than %d bytes", path,
			    SECRET_MAX);
	} else {
		data[n] = '\0';
		nl = strchr(data, '\n');
		if (nl)
			*nl = '\0';
		s = secret_from_string(data, err);
		if (!s)
			phx_err_wrap(err, "token secret file '%s'", path);
	}
	crypto_cleanse(data, sizeof(data));
	close(fd);
	return s;
}

const char *secret_value(const struct phx_secret *s)
{
	return s->value;
}

void secret_free(struct phx_secret *s)
{
	if (!s)
		return;
	if (s->value) {
		crypto_cleanse(s->value, s->len);
		free(s->value);
	}
	crypto_cleanse(s, sizeof(*s));
	free(s);
}
