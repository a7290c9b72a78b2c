/* pgp: GPGME behind a fork (see pgp.h). The parent makes the private GNUPGHOME and removes
 * it; a child with a scrubbed environment imports the keyring there, verifies, and reports
 * on a pipe: a struct pgp_report, then the signed text. GPGME's errors are translated here.
 *
 * Why GPGME and not Sequoia's sqv: bookworm's sqv (1.1.0) verifies detached signatures
 * only, and Fedora's CHECKSUM files are clear-signed; sqv is also a program, not a library,
 * so it would be a door of its own. gpgv would need binary keyrings (distributions ship
 * armored ones as often) and a status-fd parser written here. */
#include "pgp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gpgme.h>

#include "buf.h"
#include "fsutil.h"

enum { PGP_TEXT_MAX = 16 << 20 }; /* signed text a checksum file may reasonably hold */

struct pgp_job {
	const char *keyring;
	const char *home;
	bool verify; /* else only count the keys */
	const void *data, *sig;
	size_t len, sig_len;
	const char *data_name, *sig_name;
};

/* What the child writes on its pipe, followed by text_len bytes of signed text. */
struct pgp_report {
	int rc;
	struct phx_err err;
	size_t nkeys;
	char signer[PGP_FPR_MAX + 1];
	size_t text_len;
};

static int pgp_gpgme_fail(struct phx_err *err, enum phx_err_code code, gpgme_error_t e,
			  const char *what)
{
	return phx_err_set(err, code, "%s: %s", what, gpgme_strerror(e));
}

/* ---- in the child ------------------------------------------------------------------------ */

static int pgp_ctx_new(const char *home, gpgme_ctx_t *ret, struct phx_err *err)
{
	gpgme_ctx_t ctx;
	gpgme_error_t e;

	if (!gpgme_check_version("1.13.0"))
		return phx_err_set(err, PHX_E_INTERNAL, "GPGME 1.13 or newer is needed, found %s",
				   gpgme_check_version(NULL));
	e = gpgme_new(&ctx);
	if (e)
		return pgp_gpgme_fail(err, PHX_E_RUNTIME, e, "start GPGME");
	if ((e = gpgme_set_protocol(ctx, GPGME_PROTOCOL_OpenPGP)) ||
	    (e = gpgme_ctx_set_engine_info(ctx, GPGME_PROTOCOL_OpenPGP, NULL, home))) {
		gpgme_release(ctx);
		return pgp_gpgme_fail(err, PHX_E_RUNTIME, e, "set up gpg");
	}
	*ret = ctx;
	return 0;
}

static int pgp_import(gpgme_ctx_t ctx, const char *keyring, size_t *ret_n, struct phx_err *err)
{
	gpgme_data_t kd;
	gpgme_import_result_t r;
	gpgme_error_t e;

	e = gpgme_data_new_from_file(&kd, keyring, 1);
	if (e)
		return phx_err_set(err, PHX_E_IO, "read keyring '%s': %s", keyring,
				   gpgme_strerror(e));
	e = gpgme_op_import(ctx, kd);
	gpgme_data_release(kd);
	if (e)
		return phx_err_set(err, PHX_E_INPUT, "keyring '%s': %s", keyring,
				   gpgme_strerror(e));
	r = gpgme_op_import_result(ctx);
	*ret_n = r && r->imported > 0 ? (size_t)r->imported : 0;
	return 0;
}

static void pgp_date(unsigned long t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !gmtime_r(&tt, &tm) || !strftime(out, len, "%Y-%m-%d %H:%M UTC", &tm))
		snprintf(out, len, "an unknown date");
}

/* When the (sub)key `id` of the keyring expires, for a message. */
static void pgp_key_expiry(gpgme_ctx_t ctx, const char *id, char *out, size_t len)
{
	gpgme_key_t key = NULL;
	unsigned long when = 0;

	if (id && !gpgme_get_key(ctx, id, &key, 0) && key) {
		for (gpgme_subkey_t sk = key->subkeys; sk; sk = sk->next) {
			size_t n = strlen(id), fl = sk->fpr ? strlen(sk->fpr) : 0;

			if (sk == key->subkeys || (sk->fpr && fl >= n && !strcmp(sk->fpr + fl - n, id)))
				when = (unsigned long)sk->expires;
		}
		gpgme_key_unref(key);
	}
	pgp_date(when, out, len);
}

/* Why `s` is not acceptable, or NULL when it is a good, valid signature. Every key in the
 * private home came from the operator's keyring, so being there is the trust: gpg's own
 * web-of-trust validity (always "unknown" here) is not consulted. What is: the signature is
 * good (GOODSIG, status 0), and neither it nor its key expired or was revoked (gpg reports
 * those as EXPSIG, EXPKEYSIG, REVKEYSIG, which GPGME turns into the status codes below). */
static const char *pgp_refusal(gpgme_ctx_t ctx, gpgme_signature_t s, const char *keyring,
			       char *why, size_t len)
{
	char date[64];

	switch (gpgme_err_code(s->status)) {
	case GPG_ERR_NO_ERROR:
		if (s->wrong_key_usage)
			return "the key is not meant for signing";
		if (s->summary & GPGME_SIGSUM_KEY_EXPIRED)
			break;
		if (s->summary & GPGME_SIGSUM_KEY_REVOKED)
			return "the key is revoked";
		if (s->summary & GPGME_SIGSUM_SIG_EXPIRED)
			return "the signature has expired";
		if (s->summary & (GPGME_SIGSUM_RED | GPGME_SIGSUM_KEY_MISSING))
			return "the signature is not good";
		return NULL;
	case GPG_ERR_NO_PUBKEY:
		snprintf(why, len, "the key is not in keyring '%s'", keyring);
		return why;
	case GPG_ERR_BAD_SIGNATURE:
		return "bad signature: the file is not what the key signed";
	case GPG_ERR_KEY_EXPIRED:
		break;
	case GPG_ERR_CERT_REVOKED:
		return "the key is revoked";
	case GPG_ERR_SIG_EXPIRED:
		pgp_date(s->exp_timestamp, date, sizeof(date));
		snprintf(why, len, "the signature expired on %s", date);
		return why;
	default:
		snprintf(why, len, "%s", gpgme_strerror(s->status));
		return why;
	}
	pgp_key_expiry(ctx, s->fpr, date, sizeof(date));
	snprintf(why, len, "the key expired on %s", date);
	return why;
}

static int pgp_check_result(gpgme_ctx_t ctx, const struct pgp_job *j, struct pgp_report *rep,
			    struct phx_err *err)
{
	gpgme_verify_result_t r = gpgme_op_verify_result(ctx);
	char reasons[2048] = "", why[512];
	size_t o = 0;

	if (!r || !r->signatures)
		return phx_err_set(err, PHX_E_VERIFY, "'%s' holds no OpenPGP signature",
				   j->sig_name);
	for (gpgme_signature_t s = r->signatures; s; s = s->next) {
		const char *bad = pgp_refusal(ctx, s, j->keyring, why, sizeof(why));

		if (!bad) {
			snprintf(rep->signer, sizeof(rep->signer), "%s", s->fpr ? s->fpr : "");
			return 0;
		}
		if (o < sizeof(reasons))
			o += (size_t)snprintf(reasons + o, sizeof(reasons) - o, "%skey %s: %s",
					      o ? "; " : "", s->fpr ? s->fpr : "(no key ID)", bad);
	}
	if (j->sig)
		return phx_err_set(err, PHX_E_VERIFY, "signature '%s' over '%s' refused: %s",
				   j->sig_name, j->data_name, reasons);
	return phx_err_set(err, PHX_E_VERIFY, "clear-signed '%s' refused: %s", j->data_name,
			   reasons);
}

static int pgp_do_verify(gpgme_ctx_t ctx, const struct pgp_job *j, struct pgp_report *rep,
			 char **ret_text, struct phx_err *err)
{
	gpgme_data_t msg = NULL, sig = NULL, plain = NULL;
	gpgme_error_t e;
	char *text = NULL;
	size_t n = 0;
	int rc = -1;

	if (j->sig) {
		e = gpgme_data_new_from_mem(&sig, j->sig, j->sig_len, 0);
		if (!e)
			e = gpgme_data_new_from_mem(&msg, j->data, j->len, 0);
		if (!e)
			e = gpgme_op_verify(ctx, sig, msg, NULL);
	} else {
		e = gpgme_data_new_from_mem(&sig, j->data, j->len, 0);
		if (!e)
			e = gpgme_data_new(&plain);
		if (!e)
			e = gpgme_op_verify(ctx, sig, NULL, plain);
	}
	if (gpgme_err_code(e) == GPG_ERR_NO_DATA) {
		phx_err_set(err, PHX_E_VERIFY, "'%s' holds no OpenPGP signature",
			    j->sig ? j->sig_name : j->data_name);
		goto out;
	}
	if (e) {
		pgp_gpgme_fail(err, PHX_E_VERIFY, e, "verify");
		phx_err_wrap(err, "'%s'", j->sig ? j->sig_name : j->data_name);
		goto out;
	}
	if (pgp_check_result(ctx, j, rep, err) < 0)
		goto out;
	if (plain) {
		text = gpgme_data_release_and_get_mem(plain, &n);
		plain = NULL;
		if (!text && n) {
			phx_err_set(err, PHX_E_NOMEM, "out of memory");
			goto out;
		}
		*ret_text = text;
		rep->text_len = n;
		text = NULL;
	}
	rc = 0;
out:
	gpgme_free(text);
	gpgme_data_release(msg);
	gpgme_data_release(sig);
	gpgme_data_release(plain);
	return rc;
}

static int pgp_write_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len) {
		ssize_t n = write(fd, c, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

static void pgp_child(const struct pgp_job *j, int fd)
{
	struct pgp_report rep = {0};
	const char *path = getenv("PATH");
	char *keep_path = strdup(path ? path : "/usr/bin:/bin");
	gpgme_ctx_t ctx = NULL;
	char *text = NULL;

	/* gpg gets nothing of ours: not the token, not GNUPGHOME, not GPG_AGENT_INFO */
	clearenv();
	if (!keep_path || setenv("PATH", keep_path, 1) || setenv("LC_ALL", "C", 1)) {
		phx_err_set(&rep.err, PHX_E_NOMEM, "out of memory");
		rep.rc = -1;
	}
	free(keep_path);
	if (!rep.rc)
		rep.rc = pgp_ctx_new(j->home, &ctx, &rep.err);
	if (!rep.rc)
		rep.rc = pgp_import(ctx, j->keyring, &rep.nkeys, &rep.err);
	if (!rep.rc && j->verify && rep.nkeys == 0)
		rep.rc = phx_err_set(&rep.err, PHX_E_VERIFY, "keyring '%s' holds no OpenPGP key",
				     j->keyring);
	if (!rep.rc && j->verify)
		rep.rc = pgp_do_verify(ctx, j, &rep, &text, &rep.err);
	if (pgp_write_all(fd, &rep, sizeof(rep)) == 0 && text)
		pgp_write_all(fd, text, rep.text_len);
	gpgme_free(text);
	gpgme_release(ctx);
	close(fd);
}

/* ---- in the parent ----------------------------------------------------------------------- */

static const char pgp_conf[] = "no-autostart\n"
			       "no-auto-key-retrieve\n"
			       "no-auto-key-import\n"
			       "auto-key-locate local\n";

static int pgp_run(struct pgp_job *j, struct pgp_report *rep, struct buf *text,
		   struct phx_err *err)
{
	const char *tmp = getenv("TMPDIR");
	struct phx_err ignored = PHX_ERR_INIT;
	struct buf out;
	char *home = NULL, *conf = NULL;
	int fds[2] = {-1, -1}, st = 0, rc = -1;
	pid_t pid;

	buf_init(&out, sizeof(*rep) + PGP_TEXT_MAX);
	if (asprintf(&home, "%s/phx-gnupg-XXXXXX", tmp && tmp[0] == '/' ? tmp : "/tmp") < 0) {
		home = NULL;
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	if (!mkdtemp(home)) { /* mkdtemp makes it 0700 */
		phx_err_set_errno(err, PHX_E_IO, errno, "create a private GnuPG home '%s'", home);
		free(home);
		return -1;
	}
	j->home = home;
	/* gpg needs no agent to import public keys or verify, and must not fetch or import a
	 * key from anywhere but the keyring: not from a keyserver, not from inside a signature */
	if (asprintf(&conf, "%s/gpg.conf", home) < 0) {
		conf = NULL;
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
		goto out;
	}
	if (fs_write_atomic(conf, pgp_conf, strlen(pgp_conf), 0600, err) < 0)
		goto out;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		phx_err_set_errno(err, PHX_E_RUNTIME, errno, "pipe");
		goto out;
	}
	fflush(NULL); /* nothing buffered may be written twice */
	pid = fork();
	if (pid < 0) {
		phx_err_set_errno(err, PHX_E_RUNTIME, errno, "fork");
		goto out;
	}
	if (pid == 0) {
		close(fds[0]);
		pgp_child(j, fds[1]);
		_exit(0);
	}
	close(fds[1]);
	fds[1] = -1;
	for (;;) {
		char chunk[65536];
		ssize_t n = read(fds[0], chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (buf_append(&out, chunk, (size_t)n, err) < 0) {
			kill(pid, SIGKILL);
			break;
		}
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (phx_err_is_set(err))
		goto out;
	if (out.len < sizeof(*rep) || !WIFEXITED(st)) {
		phx_err_set(err, PHX_E_INTERNAL, "the OpenPGP helper process died (%s %d)",
			    WIFSIGNALED(st) ? "signal" : "status",
			    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
		goto out;
	}
	memcpy(rep, out.data, sizeof(*rep));
	rep->err.msg[sizeof(rep->err.msg) - 1] = '\0';
	rep->signer[sizeof(rep->signer) - 1] = '\0';
	if (rep->rc) {
		phx_err_set(err, rep->err.code ? rep->err.code : PHX_E_INTERNAL, "%s",
			    rep->err.msg);
		goto out;
	}
	if (rep->text_len != out.len - sizeof(*rep)) {
		phx_err_set(err, PHX_E_INTERNAL, "the OpenPGP helper sent %zu bytes, announced %zu",
			    out.len - sizeof(*rep), rep->text_len);
		goto out;
	}
	if (text && buf_append(text, out.data + sizeof(*rep), rep->text_len, err) < 0)
		goto out;
	rc = 0;
out:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	/* a leftover temp dir is not worth failing a verified run for */
	fs_remove_tree(home, &ignored);
	free(home);
	free(conf);
	buf_release(&out);
	return rc;
}

int pgp_keyring_count(const char *keyring, size_t *ret_n, struct phx_err *err)
{
	struct pgp_job j = {.keyring = keyring};
	struct pgp_report rep;

	if (pgp_run(&j, &rep, NULL, err) < 0)
		return -1;
	*ret_n = rep.nkeys;
	return 0;
}

int pgp_verify(const char *keyring, const void *data, size_t len, const char *data_name,
	       const void *sig, size_t sig_len, const char *sig_name, struct pgp_verified *ret,
	       struct phx_err *err)
{
	struct pgp_job j = {.keyring = keyring,
			    .verify = true,
			    .data = data,
			    .len = len,
			    .data_name = data_name,
			    .sig = sig,
			    .sig_len = sig_len,
			    .sig_name = sig_name ? sig_name : data_name};
	struct pgp_report rep;
	struct buf text;
	size_t n;
	char *t;

	buf_init(&text, PGP_TEXT_MAX);
	if (pgp_run(&j, &rep, sig ? NULL : &text, err) < 0) {
		buf_release(&text);
		return -1;
	}
	if (sig && buf_append(&text, data, len, err) < 0) {
		buf_release(&text);
		return -1;
	}
	n = text.len;
	t = buf_detach(&text);
	buf_release(&text);
	if (!t)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	ret->len = n;
	ret->text = t;
	snprintf(ret->signer, sizeof(ret->signer), "%s", rep.signer);
	return 0;
}

void pgp_verified_release(struct pgp_verified *v)
{
	if (!v)
		return;
	free(v->text);
	*v = (struct pgp_verified)PGP_VERIFIED_INIT;
}
