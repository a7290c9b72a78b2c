/* pve: client core (see pve.h) — URL and auth header, request encoding, envelope parsing,
 * error mapping, retries, task polling. The typed calls live in pve_calls.c. Never prints:
 * a dry run prints its plan (plan.h) and gives this client read_only, which refuses any
 * changing request as a bug instead of faking an answer. */
#include "pve.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "buf.h"
#include "crypto.h"
#include "log.h"
#include "progress.h"

enum {
	PVE_KNOWN_UPIDS = 64,
	PVE_TASK_LOOKUP_DEFAULT_S = 5,
	/* a task's starttime may precede our estimate of the send time: the Date header has
	 * whole seconds, and so does time() */
	PVE_SINCE_SLACK_S = 2,
};

struct pve_client {
	struct http_client *http;
	char *base;	/* "https://host:port/api2/json" */
	char *token_id;
	char *auth;	/* "PVEAPIToken=ID=SECRET": wiped on free */
	char *node;
	long request_timeout_s;
	int max_tries;
	unsigned retry_base_ms;
	bool read_only;
	unsigned jitter; /* xorshift state for retry jitter; per client, no globals */
	long task_lookup_s;
	long long clock_offset; /* server clock minus ours (s), from the last Date header */
	/* UPIDs this client was answered with, newest last (a ring): a task it already knows
	 * is never taken for the one a lost answer would have named */
	char *known[PVE_KNOWN_UPIDS];
	size_t known_next;
};

static char *xstrdup(const char *s, struct phx_err *err)
{
	char *d = strdup(s ? s : "");

	if (!d)
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return d;
}

static void wipe_free(char *s)
{
	if (!s)
		return;
	crypto_cleanse(s, strlen(s));
	free(s);
}

static int pve_check_token_id(const char *id, struct phx_err *err)
{
	const char *at = id ? strchr(id, '@') : NULL;
	const char *bang = at ? strchr(at, '!') : NULL;

	if (!id || !*id || !at || at == id || !bang || bang == at + 1 || !bang[1] ||
	    strpbrk(id, " \t\r\n=;"))
		return phx_err_set(err, PHX_E_INPUT,
				   "token id '%s': expected USER@REALM!TOKENNAME, e.g. "
				   "'automation@pve!builder'",
				   id ? id : "");
	return 0;
}

struct pve_client *pve_client_new(const struct pve_client_opts *opts, struct phx_err *err)
{
	struct pve_client *c = calloc(1, sizeof(*c));
	struct http_client_opts hopts;
	const char *url = opts->api_url ? opts->api_url : "";
	size_t ulen = strlen(url);
	unsigned seed = 0;

	if (!c) {
		phx_err_set(err, PHX_E_NOMEM, "out of memory creating the Proxmox client");
		return NULL;
	}
	if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
		phx_err_set(err, PHX_E_INPUT,
			    "API URL '%s': expected https://HOST:8006 (PVE_API_URL)", url);
		goto fail;
	}
	while (ulen && url[ulen - 1] == '/')
		ulen--;
	if (ulen >= 10 && strncmp(url + ulen - 10, "/api2/json", 10) == 0)
		ulen -= 10;
	if (asprintf(&c->base, "%.*s/api2/json", (int)ulen, url) < 0) {
		c->base = NULL;
		goto nomem;
	}
	if (pve_check_token_id(opts->token_id, err) < 0)
		goto fail;
	if (!opts->secret || !secret_value(opts->secret) || !*secret_value(opts->secret)) {
		phx_err_set(err, PHX_E_INPUT,
			    "token '%s': no secret given (PVE_TOKEN_SECRET or "
			    "PVE_TOKEN_SECRET_FILE)",
			    opts->token_id);
		goto fail;
	}
	c->token_id = xstrdup(opts->token_id, err);
	c->node = xstrdup(opts->node ? opts->node : "", err);
	if (!c->token_id || !c->node)
		goto fail;
	if (asprintf(&c->auth, "PVEAPIToken=%s=%s", opts->token_id,
		     secret_value(opts->secret)) < 0) {
		c->auth = NULL;
		goto nomem;
	}
	c->request_timeout_s = opts->request_timeout_s > 0 ? opts->request_timeout_s : 300;
	c->max_tries = opts->max_tries > 0 ? opts->max_tries : 4;
	c->retry_base_ms = opts->retry_base_ms > 0 ? opts->retry_base_ms : 250;
	c->read_only = opts->read_only;
	c->task_lookup_s = opts->task_lookup_s > 0 ? opts->task_lookup_s
						   : PVE_TASK_LOOKUP_DEFAULT_S;
	if (crypto_random(&seed, sizeof(seed), NULL) < 0 || !seed)
		seed = (unsigned)time(NULL) | 1u;
	c->jitter = seed;

	memset(&hopts, 0, sizeof(hopts));
	hopts.tls = opts->tls;
	hopts.connect_timeout_s = opts->connect_timeout_s;
	hopts.low_speed_time_s = opts->low_speed_time_s;
	hopts.auth_header = c->auth;
	c->http = http_client_new(&hopts, err);
	if (!c->http)
		goto fail;
	return c;
nomem:
	phx_err_set(err, PHX_E_NOMEM, "out of memory creating the Proxmox client");
fail:
	pve_client_free(c);
	return NULL;
}

void pve_client_free(struct pve_client *c)
{
	if (!c)
		return;
	http_client_free(c->http);
	free(c->base);
	free(c->token_id);
	wipe_free(c->auth);
	free(c->node);
	for (size_t i = 0; i < PVE_KNOWN_UPIDS; i++)
		free(c->known[i]);
	free(c);
}

/* Best effort: a UPID that cannot be remembered only makes a later lookup less sure, and
 * a lookup that finds two candidates reports the outcome unknown rather than guess. */
static void known_add(struct pve_client *c, const char *upid)
{
	char *d = strdup(upid);

	if (!d)
		return;
	free(c->known[c->known_next]);
	c->known[c->known_next] = d;
	c->known_next = (c->known_next + 1) % PVE_KNOWN_UPIDS;
}

static bool known_has(const struct pve_client *c, const char *upid)
{
	for (size_t i = 0; i < PVE_KNOWN_UPIDS; i++)
		if (c->known[i] && strcmp(c->known[i], upid) == 0)
			return true;
	return false;
}

const char *pve_client_node(const struct pve_client *c)
{
	return c->node;
}

const char *pve_client_token_id(const struct pve_client *c)
{
	return c->token_id;
}

char *pve_path(struct phx_err *err, const char *first, ...)
{
	struct buf b = BUF_INIT;
	const char *part;
	va_list ap;

	va_start(ap, first);
	for (part = first; part; part = va_arg(ap, const char *)) {
		char *e = http_escape(part, err);

		if (!e || buf_printf(&b, err, "/%s", e) < 0) {
			free(e);
			va_end(ap);
			buf_release(&b);
			return NULL;
		}
		free(e);
	}
	va_end(ap);
	if (!b.len && buf_puts(&b, "/", err) < 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b);
}

/* ---- pure helpers ---- */

static int envelope_root(const char *body, size_t len, const char *what, json_t **ret_root,
			 struct phx_err *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(body ? body : "", len, JSON_DECODE_ANY, &jerr);

	if (!root)
		return phx_err_set(err, PHX_E_API, "%s: response is not JSON: %d:%d: %s", what,
				   jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root) || !json_object_get(root, "data")) {
		json_decref(root);
		return phx_err_set(err, PHX_E_API,
				   "%s: response has no \"data\" member (not a Proxmox API answer?)",
				   what);
	}
	*ret_root = root;
	return 0;
}

int pve_envelope_parse(const char *body, size_t len, const char *what, json_t **ret_data,
		       struct phx_err *err)
{
	json_t *root;

	if (envelope_root(body, len, what, &root, err) < 0)
		return -1;
	if (ret_data)
		*ret_data = json_incref(json_object_get(root, "data"));
	json_decref(root);
	return 0;
}

int pve_json_int(const json_t *v, const char *what, long long *ret, struct phx_err *err)
{
	if (json_is_integer(v)) {
		*ret = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v) && json_real_value(v) == (double)(long long)json_real_value(v)) {
		*ret = (long long)json_real_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		long long n;

		errno = 0;
		n = strtoll(s, &end, 10);
		if (*s && !isspace((unsigned char)*s) && !*end && errno == 0) {
			*ret = n;
			return 0;
		}
		return phx_err_set(err, PHX_E_API, "%s: expected an integer, got '%s'", what, s);
	}
	return phx_err_set(err, PHX_E_API, "%s: expected an integer, got %s", what,
			   v ? (json_is_null(v) ? "null" : "another JSON type") : "nothing");
}

bool pve_is_lock_timeout(const char *text)
{
	const char *p = text ? strstr(text, "can't lock file") : NULL;

	return p && strstr(p, "got timeout");
}

/* Trims trailing blanks, newlines and one trailing '.' into a fresh buffer. */
static void trim_copy(char *dst, size_t len, const char *src, bool drop_dot)
{
	size_t n = strlen(src), i;

	while (n && isspace((unsigned char)src[n - 1]))
		n--;
	if (drop_dot && n && src[n - 1] == '.')
		n--;
	if (n >= len)
		n = len - 1;
	for (i = 0; i < n; i++)
		dst[i] = (src[i] == '\n' || src[i] == '\r') ? ' ' : src[i];
	dst[n] = '\0';
}

static enum phx_err_code classify(const char *text)
{
	if (pve_is_lock_timeout(text))
		return PHX_E_TIMEOUT;
	if (strstr(text, "is locked") || strstr(text, "already exists") ||
	    strstr(text, "already running"))
		return PHX_E_CONFLICT;
	if (strstr(text, "does not exist") || strstr(text, "no such"))
		return PHX_E_NOTFOUND;
	return PHX_E_API;
}

int pve_error_from_http(const char *method, const char *path, long status, const char *reason,
			const char *body, size_t body_len, struct phx_err *err)
{
	char what[1024], text[2048], priv[256], ppath[768];
	struct buf detail = BUF_INIT;
	json_t *root = NULL, *errors, *msg;
	enum phx_err_code code;
	const char *key;
	json_t *val;
	bool had_set = phx_err_is_set(err);

	snprintf(what, sizeof(what), "%s %s", method, path);
	trim_copy(text, sizeof(text), reason ? reason : "", true);
	if (body && body_len)
		root = json_loadb(body, body_len, 0, NULL);
	errors = json_object_get(root, "errors");
	msg = json_object_get(root, "message");
	/* Newer servers repeat the full message in the body; prefer it when there is no
	 * per-parameter detail, since the reason phrase is only its first line. */
	if (!json_object_size(errors) && json_is_string(msg) && *json_string_value(msg))
		trim_copy(text, sizeof(text), json_string_value(msg), true);
	if (!*text)
		snprintf(text, sizeof(text), "%s", status == 401 ? "Authentication failed" : "error");

	if (status == 401) {
		phx_err_set(err, PHX_E_AUTH,
			    "%s: HTTP 401 token rejected (%s): check the token id and secret, and "
			    "that the token exists, has not expired and its user is enabled",
			    what, text);
		goto out;
	}
	if (status == 403) {
		/* "Permission check failed (/vms/100, VM.Allocate)" */
		if (sscanf(text, "Permission check failed (%767[^,], %255[^)])", ppath, priv) == 2)
			phx_err_set(err, PHX_E_PERM,
				    "%s: HTTP 403 token lacks %s on %s; with privilege separation "
				    "a token only gets privileges granted to both its user and the "
				    "token (pveum acl modify %s --users USER --tokens 'USER!TOKEN' "
				    "--roles ROLE)",
				    what, priv, ppath, ppath);
		else
			phx_err_set(err, PHX_E_PERM,
				    "%s: HTTP 403 %s; with privilege separation a token only gets "
				    "privileges granted to both its user and the token",
				    what, text);
		goto out;
	}
	json_object_foreach(errors, key, val) {
		char v[1024];

		trim_copy(v, sizeof(v), json_is_string(val) ? json_string_value(val) : "invalid",
			  false);
		if (buf_printf(&detail, NULL, "%s%s: %s", detail.len ? "; " : "", key, v) < 0)
			break;
	}
	code = classify(text);
	if (code == PHX_E_API && detail.len)
		code = classify(buf_str(&detail));
	if (detail.len)
		phx_err_set(err, code, "%s: HTTP %ld %s: %s", what, status, text, buf_str(&detail));
	else
		phx_err_set(err, code, "%s: HTTP %ld %s", what, status, text);
out:
	if (err && !had_set)
		err->http_status = (int)status;
	buf_release(&detail);
	json_decref(root);
	return -1;
}

int pve_upid_node(const char *upid, char *ret, size_t len, struct phx_err *err)
{
	const char *p, *end;
	size_t n;

	if (!upid || strncmp(upid, "UPID:", 5) != 0)
		goto bad;
	p = upid + 5;
	end = strchr(p, ':');
	if (!end || end == p)
		goto bad;
	for (const char *q = p; q < end; q++)
		if (!isalnum((unsigned char)*q) && *q != '-')
			goto bad;
	n = (size_t)(end - p);
	if (n >= len)
		goto bad;
	memcpy(ret, p, n);
	ret[n] = '\0';
	return 0;
bad:
	return phx_err_set(err, PHX_E_API, "task id '%s': not a Proxmox UPID", upid ? upid : "");
}

/* Proxmox answers many plain state errors with 500 ("VM 100 is not running", "Configuration
 * file ... does not exist"): asking again cannot help, and agent polling loops would pay the
 * backoff on every poll. Everything else in 5xx (proxy 59x, 502-504, internal hiccups) is
 * worth a retry on a GET. */
static bool pve_error_is_deterministic(long status, const char *msg)
{
	static const char *const texts[] = {
		"does not exist", "already exists", "is locked", "not running",
		"No QEMU guest agent configured", "not implemented", "no such", NULL,
	};
	size_t i;

	if (status == 501)
		return true;
	for (i = 0; texts[i]; i++)
		if (strstr(msg, texts[i]))
			return true;
	return false;
}

/* ---- requests ---- */

static bool method_mutates(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

static int encode_params(const struct pve_param *params, size_t n, struct buf *out,
			 struct phx_err *err)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (params[i].value && http_form_append(out, params[i].key, params[i].value, err) < 0)
			return -1;
	return 0;
}

static unsigned next_jitter(struct pve_client *c)
{
	unsigned x = c->jitter;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	c->jitter = x ? x : 1;
	return c->jitter;
}

/* Exponential backoff with "equal jitter": half fixed, half random, capped at 5 s. */
static unsigned backoff_ms(struct pve_client *c, int attempt)
{
	unsigned long d = (unsigned long)c->retry_base_ms << (attempt > 10 ? 10 : attempt - 1);

	if (d > 5000)
		d = 5000;
	return (unsigned)(d / 2 + next_jitter(c) % (d / 2 + 1));
}

/* One API call with retries; on success *ret_root is the whole envelope. Only GETs are
 * retried after a connection failure; a changing request that failed after it went out sets
 * *ret_lost (may be NULL): its answer is lost, and the server may have carried it out. */
static int pve_call(struct pve_client *c, const char *method, const char *path,
		    const struct pve_param *params, size_t n_params, const json_t *json_body,
		    json_t **ret_root, bool *ret_lost, struct phx_err *err)
{
	struct buf url = BUF_INIT, form = BUF_INIT;
	char *json_text = NULL;
	struct http_response resp;
	struct http_request req;
	bool idempotent = strcmp(method, "GET") == 0;
	bool body_params = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
	bool lock_retried = false;
	/* one full attempt, and as long again for retries: a stalled answer is retried once,
	 * a silent or trickling server holds a run twice request_timeout_s, not
	 * attempts x request_timeout_s */
	double deadline = clk_now() + 2.0 * (double)c->request_timeout_s;
	int attempt, rc = -1;

	http_response_init(&resp);
	if (json_body) {
		json_text = json_dumps(json_body, JSON_COMPACT);
		if (!json_text)
			return phx_err_set(err, PHX_E_NOMEM, "out of memory encoding a JSON body");
	}
	if (c->read_only && method_mutates(method)) {
		if (json_text) {
			crypto_cleanse(json_text, strlen(json_text));
			free(json_text);
		}
		return phx_err_set(err, PHX_E_INTERNAL, "%s %s: refused, this run is read-only "
					"(--dry-run)", method, path);
	}
	if (encode_params(params, n_params, &form, err) < 0)
		goto out;
	if (buf_printf(&url, err, "%s%s", c->base, path) < 0)
		goto out;
	if (!body_params && form.len && buf_printf(&url, err, "?%s", buf_str(&form)) < 0)
		goto out;

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.url = buf_str(&url);
	req.timeout_s = c->request_timeout_s;
	if (body_params && json_text) {
		req.content_type = "application/json";
		req.body = json_text;
		req.body_len = strlen(json_text);
	} else if (body_params) {
		req.content_type = "application/x-www-form-urlencoded";
		req.body = form.data ? form.data : "";
		req.body_len = form.len;
	}
	for (attempt = 1;; attempt++) {
		struct phx_err e = PHX_ERR_INIT;
		bool retry = false, lock_retry = false;
		long long date;

		if (attempt > 1) {
			double left = deadline - clk_now();

			/* a lock wait starts the clock again: it is Proxmox telling us to wait */
			req.timeout_s = lock_retried			? c->request_timeout_s
					: left > c->request_timeout_s	? c->request_timeout_s
					: left < 1			? 1
									: (long)left;
		}

		if (http_perform(c->http, &req, &resp, &e) < 0) {
			phx_err_wrap(&e, "%s %s", method, path);
			retry = idempotent && e.code == PHX_E_NET;
			if (ret_lost && !idempotent && resp.sent && e.code == PHX_E_NET)
				*ret_lost = true;
		} else if (resp.status >= 200 && resp.status < 300) {
			char what[512];
			const char *upid;

			if (http_response_date(&resp, &date))
				c->clock_offset = date - (long long)time(NULL);
			snprintf(what, sizeof(what), "%s %s", method, path);
			rc = envelope_root(resp.body.data, resp.body.len, what, ret_root, err);
			upid = rc == 0 ? json_string_value(json_object_get(*ret_root, "data"))
				       : NULL;
			if (upid && !idempotent && strncmp(upid, "UPID:", 5) == 0)
				known_add(c, upid);
			goto out;
		} else {
			if (http_response_date(&resp, &date))
				c->clock_offset = date - (long long)time(NULL);
			pve_error_from_http(method, path, resp.status, resp.reason, resp.body.data,
					    resp.body.len, &e);
			/* 5xx on a GET is retried (59x are pveproxy's timeouts); anything else
			 * may have done something, except a lock timeout, which by definition
			 * ran nothing */
			lock_retry = pve_is_lock_timeout(resp.reason) ||
				     pve_is_lock_timeout(buf_str(&resp.body));
			retry = (idempotent && resp.status >= 500 &&
				 !pve_error_is_deterministic(resp.status, e.msg)) ||
				lock_retry;
		}
		if (retry && !lock_retry &&
		    clk_now() + backoff_ms(c, attempt) / 1000.0 + 1 >= deadline) {
			phx_err_wrap(&e, "gave up after %d attempt%s (deadline %ld s)", attempt,
				     attempt == 1 ? "" : "s", 2 * c->request_timeout_s);
			retry = false;
		}
		if (!retry || attempt >= c->max_tries) {
			if (err && !phx_err_is_set(err))
				*err = e;
			goto out;
		}
		{
			unsigned ms = backoff_ms(c, attempt);

			log_debug("%s; retrying in %u ms (attempt %d of %d)", e.msg, ms,
				  attempt + 1, c->max_tries);
			clk_sleep_ms(ms);
			lock_retried = lock_retry;
			if (lock_retry)
				deadline = clk_now() + 2.0 * (double)c->request_timeout_s;
		}
	}
out:
	if (form.data)
		crypto_cleanse(form.data, form.len); /* may hold cipassword */
	if (json_text) {
		crypto_cleanse(json_text, strlen(json_text));
		free(json_text);
	}
	buf_release(&form);
	buf_release(&url);
	http_response_release(&resp);
	return rc;
}

/* Appends to a message the caller is about to hand on (truncated when full). */
static void msg_append(struct phx_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void msg_append(struct phx_err *e, const char *fmt, ...)
{
	size_t n = strlen(e->msg);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->msg + n, sizeof(e->msg) - n, fmt, ap);
	va_end(ap);
}

static int pve_request_data(struct pve_client *c, const char *method, const char *path,
			    const struct pve_param *params, size_t n_params, const json_t *body,
			    json_t **ret_data, struct phx_err *err)
{
	struct phx_err e = PHX_ERR_INIT;
	bool lost = false;
	json_t *root;

	if (pve_call(c, method, path, params, n_params, body, &root, &lost, &e) < 0) {
		if (lost)
			msg_append(&e, "; no answer arrived, so whether Proxmox carried the "
				       "request out is unknown; it was not sent again");
		if (err && !phx_err_is_set(err))
			*err = e;
		return -1;
	}
	if (ret_data)
		*ret_data = json_incref(json_object_get(root, "data"));
	json_decref(root);
	return 0;
}

int pve_request(struct pve_client *c, const char *method, const char *path,
		const struct pve_param *params, size_t n_params, json_t **ret_data,
		struct phx_err *err)
{
	return pve_request_data(c, method, path, params, n_params, NULL, ret_data, err);
}

int pve_request_json(struct pve_client *c, const char *method, const char *path,
		     const json_t *body, json_t **ret_data, struct phx_err *err)
{
	return pve_request_data(c, method, path, NULL, 0, body, ret_data, err);
}

int pve_get(struct pve_client *c, const char *path, const struct pve_param *params,
	    size_t n_params, json_t **ret_data, struct phx_err *err)
{
	return pve_request(c, "GET", path, params, n_params, ret_data, err);
}

int pve_post(struct pve_client *c, const char *path, const struct pve_param *params,
	     size_t n_params, json_t **ret_data, struct phx_err *err)
{
	return pve_request(c, "POST", path, params, n_params, ret_data, err);
}

/* ---- tasks ---- */

int pve_task_status_parse(const json_t *status, enum pve_task_state *ret_state,
			  const char **ret_exitstatus, struct phx_err *err)
{
	const char *st = json_string_value(json_object_get(status, "status"));
	const char *exit = json_string_value(json_object_get(status, "exitstatus"));

	if (!st)
		return phx_err_set(err, PHX_E_API, "task status: no 'status' member");
	if (strcmp(st, "running") == 0) {
		*ret_state = PVE_TASK_RUNNING;
		*ret_exitstatus = NULL;
		return 0;
	}
	if (strcmp(st, "stopped") != 0)
		return phx_err_set(err, PHX_E_API, "task status: unknown state '%s'", st);
	if (!exit)
		exit = "unexpected status";
	if (strcmp(exit, "OK") == 0)
		*ret_state = PVE_TASK_OK;
	else if (strncmp(exit, "WARNINGS: ", 10) == 0)
		*ret_state = PVE_TASK_WARNINGS;
	else
		*ret_state = PVE_TASK_FAILED;
	*ret_exitstatus = exit;
	return 0;
}

enum { TASK_TAIL_LINES = 10, TASK_LOG_PAGE = 50 };

/* Appends the last lines of the task log to `out`; best effort (errors are dropped: the task
 * failure is the root cause). */
static void task_log_tail(struct pve_client *c, const char *node, const char *upid,
			  struct buf *out)
{
	struct pve_param first[] = {{"start", "0"}, {"limit", "50"}};
	char start[32];
	struct pve_param last[] = {{"start", start}, {"limit", "10"}};
	char *path = pve_path(NULL, "nodes", node, "tasks", upid, "log", NULL);
	json_t *root = NULL, *lines;
	long long total = 0;
	size_t i, n, from;

	if (!path || pve_call(c, "GET", path, first, 2, NULL, &root, NULL, NULL) < 0)
		goto out;
	if (pve_json_int(json_object_get(root, "total"), "total", &total, NULL) == 0 &&
	    total > TASK_LOG_PAGE) {
		snprintf(start, sizeof(start), "%lld", total - TASK_TAIL_LINES);
		json_decref(root);
		root = NULL;
		if (pve_call(c, "GET", path, last, 2, NULL, &root, NULL, NULL) < 0)
			goto out;
	}
	lines = json_object_get(root, "data");
	n = json_array_size(lines);
	from = n > TASK_TAIL_LINES ? n - TASK_TAIL_LINES : 0;
	for (i = from; i < n; i++) {
		const char *t = json_string_value(json_object_get(json_array_get(lines, i), "t"));

		/* the log may echo parameters ("-cipassword ..."): redact before it reaches err */
		if (t && buf_puts(out, "\n  ", NULL) == 0)
			http_redact(t, strlen(t), out, NULL);
	}
out:
	json_decref(root);
	free(path);
}

/* "waiting for task qmclone 8001 on pve1" from UPID:node:pid:pstart:starttime:type:id:user: */
static void task_wait_label(const char *upid, const char *node, char *ret, size_t len)
{
	const char *type = upid, *id;

	for (int i = 0; i < 5 && type; i++)
		type = strchr(type, ':') ? strchr(type, ':') + 1 : NULL;
	id = type && strchr(type, ':') ? strchr(type, ':') + 1 : "";
	snprintf(ret, len, "waiting for task %.*s%s%.*s on %s", type ? (int)strcspn(type, ":") : 1,
		 type ? type : "?", *id && *id != ':' ? " " : "", (int)strcspn(id, ":"), id, node);
}

int pve_task_wait(struct pve_client *c, const char *upid, long timeout_s,
		  unsigned *ret_warnings, struct phx_err *err)
{
	char node[256];
	char *path;
	double start = clk_now(), elapsed;
	unsigned delay_ms = 50;
	struct prog_wait wait;
	char what[192];
	int rc = -1;

	if (pve_upid_node(upid, node, sizeof(node), err) < 0)
		return -1;
	if (!known_has(c, upid))
		known_add(c, upid);
	if (timeout_s <= 0)
		timeout_s = PVE_TASK_TIMEOUT_DEFAULT;
	path = pve_path(err, "nodes", node, "tasks", upid, "status", NULL);
	if (!path)
		return -1;
	task_wait_label(upid, node, what, sizeof(what));
	prog_wait_start(&wait, what);
	for (;;) {
		enum pve_task_state state;
		const char *exit;
		json_t *data = NULL;

		clk_sleep_ms(delay_ms);
		prog_wait_tick(&wait);
		if (pve_get(c, path, NULL, 0, &data, err) < 0)
			break;
		if (pve_task_status_parse(data, &state, &exit, err) < 0) {
			json_decref(data);
			break;
		}
		if (state == PVE_TASK_OK || state == PVE_TASK_WARNINGS) {
			if (state == PVE_TASK_WARNINGS)
				log_warn("task %s finished with %s", upid, exit);
			if (ret_warnings)
				*ret_warnings = state == PVE_TASK_WARNINGS
							? (unsigned)strtoul(exit + 10, NULL, 10)
							: 0;
			json_decref(data);
			rc = 0;
			break;
		}
		if (state == PVE_TASK_FAILED) {
			struct buf tail = BUF_INIT;

			task_log_tail(c, node, upid, &tail);
			phx_err_set(err, PHX_E_TASK, "task %s failed: %s%s%s", upid, exit,
				    tail.len ? "; task log ends:" : "", buf_str(&tail));
			buf_release(&tail);
			json_decref(data);
			break;
		}
		json_decref(data);
		elapsed = clk_now() - start;
		if (elapsed >= (double)timeout_s) {
			phx_err_set(err, PHX_E_TIMEOUT,
				    "task %s still running after %ld s (raise the operation's "
				    "timeout; the task keeps running on the server)",
				    upid, timeout_s);
			break;
		}
		/* Poll interval proportional to the time already waited: the end of the task
		 * is seen within ~6% of its duration (+ one round trip), at a logarithmic number of
		 * requests (~70 for a 20 s task, then one every 2 s). */
		delay_ms = (unsigned)(elapsed * 60.0);
		if (delay_ms < 50)
			delay_ms = 50;
		if (delay_ms > 2000)
			delay_ms = 2000;
		if (elapsed + delay_ms / 1000.0 > (double)timeout_s)
			delay_ms = (unsigned)(((double)timeout_s - elapsed) * 1000.0) + 1;
	}
	free(path);
	return rc;
}

/* ---- tasks started by a request ---- */

/* Percent-decodes one path part (pve_path escaped it). False when it does not fit. */
static bool path_part_decode(const char *src, size_t len, char *dst, size_t dlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = src[i];

		if (ch == '%' && i + 2 < len && isxdigit((unsigned char)src[i + 1]) &&
		    isxdigit((unsigned char)src[i + 2])) {
			char hex[3] = {src[i + 1], src[i + 2], '\0'};

			ch = (char)strtol(hex, NULL, 16);
			i += 2;
		}
		if (o + 1 >= dlen)
			return false;
		dst[o++] = ch;
	}
	dst[o] = '\0';
	return true;
}

enum { KEY_PATH_PARTS = 8, KEY_PART_MAX = 512 };

/* Splits "/a/b%2Fc/d" into decoded parts; returns their number, -1 when there are too many
 * or one is too long. */
static int path_split(const char *path, char part[KEY_PATH_PARTS][KEY_PART_MAX])
{
	int n = 0;

	while (*path == '/') {
		const char *p = path + 1, *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (n >= KEY_PATH_PARTS || !path_part_decode(p, len, part[n], KEY_PART_MAX))
			return -1;
		n++;
		path = p + len;
	}
	return n;
}

static const char *param_get(const struct pve_param *params, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (params[i].value && strcmp(params[i].key, key) == 0)
			return params[i].value;
	return NULL;
}

/* A task key with room for the strings it points to. */
struct task_key_buf {
	struct pve_task_key key;
	char id[KEY_PART_MAX];
	char mark[2 * KEY_PART_MAX];
};

/* The task a request to one of the endpoints Phoenix calls starts: the type and id of the
 * `fork_worker` call in qemu-server PVE/API2/Qemu.pm (create_vm: qmcreate/qmrestore with the
 * new VMID; clone_vm: qmclone with the SOURCE VMID, whose worker prints "creating a clone of
 * VM $vmid with ID $newid"; template, migrate_vm, resize_vm, destroy_vm, update_vm_async,
 * vm_start/stop/shutdown/reboot/reset) and pve-storage PVE/API2/Storage/Content.pm delete
 * (imgdel, id "<owner>@<storage>", which prints "Removed volume '$volid'").
 * NEEDSWORK: an HA-managed VM's start/stop/shutdown run as hastart/hastop instead. */
/* The same for containers: pve-container API2/LXC.pm's fork_worker types, id the VMID
 * (vzclone: the source's). */
static bool task_key_guess_ct(const char *method, char part[KEY_PATH_PARTS][KEY_PART_MAX], int np,
			      const struct pve_param *params, size_t n_params,
			      struct task_key_buf *b)
{
	static const struct {
		const char *method;
		bool status;
		const char *what, *type;
	} ct_ops[] = {
		{"POST", false, "template", "vztemplate"},
		{"PUT", false, "resize", "resize"},
		{"POST", true, "start", "vzstart"},
		{"POST", true, "stop", "vzstop"},
		{"POST", true, "shutdown", "vzshutdown"},
		{"POST", true, "reboot", "vzreboot"},
	};
	const char *vmid = param_get(params, n_params, "vmid");
	const char *what = NULL;

	if (np == 3 && strcmp(method, "POST") == 0 && vmid) {
		b->key.type = param_get(params, n_params, "restore") ? "vzrestore" : "vzcreate";
		snprintf(b->id, sizeof(b->id), "%s", vmid);
		b->key.id = b->id;
		return true;
	}
	if (np < 4)
		return false;
	snprintf(b->id, sizeof(b->id), "%s", part[3]);
	b->key.id = b->id;
	if (np == 4 && strcmp(method, "DELETE") == 0) {
		b->key.type = "vzdestroy";
		return true;
	}
	if (np == 5 && strcmp(method, "POST") == 0 && strcmp(part[4], "clone") == 0) {
		b->key.type = "vzclone";
		return true;
	}
	if (np == 5)
		what = part[4];
	else if (np == 6 && strcmp(part[4], "status") == 0)
		what = part[5];
	for (size_t i = 0; what && i < sizeof(ct_ops) / sizeof(ct_ops[0]); i++)
		if (strcmp(method, ct_ops[i].method) == 0 && strcmp(what, ct_ops[i].what) == 0 &&
		    ct_ops[i].status == (np == 6)) {
			b->key.type = ct_ops[i].type;
			return true;
		}
	return false;
}

static bool task_key_guess(const char *method, const char *path,
			   const struct pve_param *params, size_t n_params,
			   struct task_key_buf *b)
{
	/* .../qemu/{vmid}/<what> or .../qemu/{vmid}/status/<what> */
	static const struct {
		const char *method;
		bool status;
		const char *what, *type;
	} vm_ops[] = {
		{"POST", false, "template", "qmtemplate"},
		{"POST", false, "config", "qmconfig"},
		{"POST", false, "migrate", "qmigrate"},
		{"PUT", false, "resize", "resize"},
		{"POST", true, "start", "qmstart"},
		{"POST", true, "stop", "qmstop"},
		{"POST", true, "shutdown", "qmshutdown"},
		{"POST", true, "reboot", "qmreboot"},
		{"POST", true, "reset", "qmreset"},
	};
	char part[KEY_PATH_PARTS][KEY_PART_MAX];
	int np = path_split(path, part);
	const char *vmid = param_get(params, n_params, "vmid");
	const char *newid = param_get(params, n_params, "newid");
	const char *what = NULL;

	memset(b, 0, sizeof(*b));
	if (np < 3 || strcmp(part[0], "nodes") != 0)
		return false;
	if (strcmp(part[2], "storage") == 0) {
		if (np != 6 || strcmp(method, "DELETE") != 0 || strcmp(part[4], "content") != 0)
			return false;
		b->key.type = "imgdel";
		/* the volume may be named without its storage (pve-storage $real_volume_id) */
		snprintf(b->mark, sizeof(b->mark), "Removed volume '%s%s%s'",
			 strchr(part[5], ':') ? "" : part[3], strchr(part[5], ':') ? "" : ":",
			 part[5]);
		b->key.log_mark = b->mark;
		return true;
	}
	if (strcmp(part[2], "lxc") == 0)
		return task_key_guess_ct(method, part, np, params, n_params, b);
	if (strcmp(part[2], "qemu") != 0)
		return false;
	if (np == 3 && strcmp(method, "POST") == 0 && vmid) {
		b->key.type = param_get(params, n_params, "archive") ? "qmrestore" : "qmcreate";
		snprintf(b->id, sizeof(b->id), "%s", vmid);
		b->key.id = b->id;
		return true;
	}
	if (np < 4)
		return false;
	snprintf(b->id, sizeof(b->id), "%s", part[3]);
	b->key.id = b->id;
	if (np == 4 && strcmp(method, "DELETE") == 0) {
		b->key.type = "qmdestroy";
		return true;
	}
	if (np == 5 && strcmp(method, "POST") == 0 && strcmp(part[4], "clone") == 0 && newid) {
		b->key.type = "qmclone";
		snprintf(b->mark, sizeof(b->mark), "creating a clone of VM %s with ID %s", part[3],
			 newid);
		b->key.log_mark = b->mark;
		return true;
	}
	if (np == 5)
		what = part[4];
	else if (np == 6 && strcmp(part[4], "status") == 0)
		what = part[5];
	for (size_t i = 0; what && i < sizeof(vm_ops) / sizeof(vm_ops[0]); i++)
		if (strcmp(method, vm_ops[i].method) == 0 && strcmp(what, vm_ops[i].what) == 0 &&
		    vm_ops[i].status == (np == 6)) {
			b->key.type = vm_ops[i].type;
			return true;
		}
	return false;
}

/* A VMID as the task list's `vmid` filter takes it (pve-vmid: 100 - 999999999). */
static bool is_vmid(const char *s)
{
	size_t n = strspn(s, "0123456789");

	return n >= 3 && n <= 9 && !s[n] && s[0] != '0';
}

/* pve-manager PVE/API2/Tasks.pm: an archived task of a token has `user` USER@REALM plus
 * `tokenid`; a running one (the active file) keeps the whole token id in `user`. */
static bool task_by_token(const json_t *t, const char *token_id)
{
	const char *user = json_string_value(json_object_get(t, "user"));
	const char *tok = json_string_value(json_object_get(t, "tokenid"));
	const char *bang = strchr(token_id, '!');

	if (!user)
		return false;
	if (!tok)
		return strcmp(user, token_id) == 0;
	return bang && strlen(user) == (size_t)(bang - token_id) &&
	       strncmp(user, token_id, (size_t)(bang - token_id)) == 0 &&
	       strcmp(tok, bang + 1) == 0;
}

/* 1 when the first lines of the task's log contain `mark`, 0 when not (yet), -1 when the
 * log could not be read. */
static int task_log_has(struct pve_client *c, const char *node, const char *upid,
			const char *mark, struct phx_err *err)
{
	struct pve_param q[] = {{"start", "0"}, {"limit", "50"}};
	char *path = pve_path(err, "nodes", node, "tasks", upid, "log", NULL);
	json_t *lines = NULL, *l;
	size_t i;
	int found = 0;

	if (!path || pve_get(c, path, q, 2, &lines, err) < 0) {
		free(path);
		return -1;
	}
	json_array_foreach(lines, i, l) {
		const char *t = json_string_value(json_object_get(l, "t"));

		if (t && strstr(t, mark)) {
			found = 1;
			break;
		}
	}
	json_decref(lines);
	free(path);
	return found;
}

int pve_tasks_settle(struct pve_client *c, const char *node, const char *type, long timeout_s,
		     struct phx_err *err)
{
	struct pve_param q[] = {{"source", "active"}, {"typefilter", type}};
	char *path = pve_path(err, "nodes", node ? node : pve_client_node(c), "tasks", NULL);
	json_t *list = NULL, *t;
	size_t i;
	int rc = -1;

	if (!path)
		return -1;
	for (;;) {
		char *upid = NULL;

		if (pve_get(c, path, q, sizeof(q) / sizeof(q[0]), &list, err) < 0)
			break;
		json_array_foreach(list, i, t) {
			const char *u = json_string_value(json_object_get(t, "upid"));
			const char *ty = json_string_value(json_object_get(t, "type"));

			if (u && ty && !strcmp(ty, type) && task_by_token(t, c->token_id)) {
				upid = strdup(u);
				break;
			}
		}
		json_decref(list);
		list = NULL;
		if (!upid) {
			rc = 0;
			break;
		}
		/* its outcome is not ours to judge: only that it no longer runs */
		if (pve_task_wait(c, upid, timeout_s, NULL, err) < 0 && err->code == PHX_E_TIMEOUT) {
			free(upid);
			break;
		}
		phx_err_clear(err);
		free(upid);
	}
	free(path);
	return rc;
}

/* Reads the node's task list once. Returns how many tasks could be the request's (the first
 * one's UPID into *ret_upid, caller frees; all of them listed in `seen`), -1 when the list
 * or a log could not be read. */
static int task_find(struct pve_client *c, const char *node, const struct pve_task_key *k,
		     long long since, bool remember, char **ret_upid, struct buf *seen,
		     struct phx_err *err)
{
	const char *bang = strchr(c->token_id, '!');
	char since_s[32], user[256];
	/* userfilter is a substring match on `user`, which has lost the token name in
	 * archived entries: filter by the user here and by the whole token id below */
	struct pve_param q[] = {
		{"source", "all"},
		{"typefilter", k->type},
		{"vmid", k->id && is_vmid(k->id) ? k->id : NULL},
		{"userfilter", user},
		{"since", since_s},
	};
	char *path = pve_path(err, "nodes", node, "tasks", NULL);
	json_t *list = NULL, *t;
	size_t i;
	int n = 0;

	snprintf(since_s, sizeof(since_s), "%lld", since);
	snprintf(user, sizeof(user), "%.*s", (int)(bang ? bang - c->token_id : 0), c->token_id);
	if (!path || pve_get(c, path, q, sizeof(q) / sizeof(q[0]), &list, err) < 0) {
		free(path);
		return -1;
	}
	json_array_foreach(list, i, t) {
		const char *upid = json_string_value(json_object_get(t, "upid"));
		const char *type = json_string_value(json_object_get(t, "type"));
		const char *id = json_string_value(json_object_get(t, "id"));
		long long start = 0;
		int m = 1;

		if (!upid || !type || strcmp(type, k->type) != 0 ||
		    (k->id && (!id || strcmp(id, k->id) != 0)) || !task_by_token(t, c->token_id) ||
		    pve_json_int(json_object_get(t, "starttime"), "starttime", &start, NULL) < 0 ||
		    start < since || known_has(c, upid))
			continue;
		if (k->log_mark)
			m = task_log_has(c, node, upid, k->log_mark, err);
		if (m < 0) {
			n = -1;
			break;
		}
		if (!m)
			continue;
		n++;
		if (remember)
			known_add(c, upid);
		buf_printf(seen, NULL, "%s%s", seen->len ? ", " : "", upid);
		if (!*ret_upid && !(*ret_upid = strdup(upid))) {
			n = phx_err_set(err, PHX_E_NOMEM, "out of memory");
			break;
		}
	}
	json_decref(list);
	free(path);
	return n;
}

/* The answer to a request to `path` was lost (e holds the transport error, which names the
 * request). Finds the task the request started, polling the task list for up to
 * task_lookup_s: a request cut off in flight may still be before its fork on the server.
 * 0 with *ret_upid (caller frees); -1 with e saying the outcome is unknown and what was
 * checked. The request is never sent again. */
static int task_recover(struct pve_client *c, const char *path, const struct pve_task_key *k,
			long long sent_at, char **ret_upid, struct phx_err *e)
{
	static const char *const not_sent = "it was not sent again: check the server before "
					    "running it again";
	char part[KEY_PATH_PARTS][KEY_PART_MAX], when[64];
	long long since = sent_at - PVE_SINCE_SLACK_S;
	double deadline = clk_now() + (double)c->task_lookup_s;
	unsigned delay_ms = 250;
	time_t tsince = (time_t)since;
	struct tm tm;

	if (!k || !k->type || path_split(path, part) < 2 || strcmp(part[0], "nodes") != 0) {
		msg_append(e,
			   "; the outcome is unknown: this request starts no task the client "
			   "knows how to look for; %s",
			   not_sent);
		return -1;
	}
	if (gmtime_r(&tsince, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	else
		snprintf(when, sizeof(when), "%lld", since);
	for (;;) {
		struct phx_err le = PHX_ERR_INIT;
		struct buf seen = BUF_INIT;
		char *upid = NULL;
		int n = task_find(c, part[1], k, since, false, &upid, &seen, &le);
		double left = deadline - clk_now();

		if (n == 1) {
			log_warn("%s; found the task it started, %s, waiting for it", e->msg, upid);
			buf_release(&seen);
			*ret_upid = upid;
			return 0;
		}
		free(upid);
		if (n < 0) {
			msg_append(e,
				   "; the outcome is unknown: reading the task list of node '%s' "
				   "failed: %s; %s",
				   part[1], le.msg, not_sent);
		} else if (n > 1) {
			msg_append(e,
				   "; the outcome is unknown: %d tasks on node '%s' could be its "
				   "own (%s); %s",
				   n, part[1], buf_str(&seen), not_sent);
		} else if (left > 0) {
			buf_release(&seen);
			clk_sleep_ms(delay_ms < left * 1000 ? delay_ms
							    : (unsigned)(left * 1000) + 1);
			delay_ms *= 2;
			continue;
		} else {
			msg_append(e,
				   "; the outcome is unknown: GET /nodes/%s/tasks shows no %s "
				   "task%s%s%s by '%s' started since %s%s%s%s (looked for %ld s), "
				   "so most likely the request did not reach Proxmox or failed "
				   "before it started a task; %s",
				   part[1], k->type, k->id ? " for '" : "", k->id ? k->id : "",
				   k->id ? "'" : "", c->token_id, when,
				   k->log_mark ? " whose log says '" : "",
				   k->log_mark ? k->log_mark : "", k->log_mark ? "'" : "",
				   c->task_lookup_s, not_sent);
		}
		buf_release(&seen);
		return -1;
	}
}

/* A request whose answer is null although it forked a worker: pve-container API2/LXC.pm
 * `template` runs fork_worker inside lock_config and returns undef (lxc-notes point 5). */
static bool task_null_forks(const struct pve_task_key *k)
{
	return k && k->type && strcmp(k->type, "vztemplate") == 0;
}

/* Before a null-answering request: the tasks of its kind that are already listed (a
 * previous run's, seconds ago, inside the lookup's clock slack) are remembered, so that
 * task_follow does not take them for the one the request starts. */
static int task_forget_earlier(struct pve_client *c, const char *path,
			       const struct pve_task_key *k, long long now, struct phx_err *err)
{
	char part[KEY_PATH_PARTS][KEY_PART_MAX];
	struct buf seen = BUF_INIT;
	char *upid = NULL;
	int n;

	if (path_split(path, part) < 2)
		return phx_err_set(err, PHX_E_INTERNAL, "'%s' names no node", path);
	n = task_find(c, part[1], k, now - PVE_SINCE_SLACK_S, true, &upid, &seen, err);
	free(upid);
	buf_release(&seen);
	return n < 0 ? -1 : 0;
}

/* Finds the task such a request started (it may not be listed at once) and returns its UPID
 * (caller frees). */
static int task_follow(struct pve_client *c, const char *path, const struct pve_task_key *k,
		       long long sent_at, char **ret_upid, struct phx_err *err)
{
	char part[KEY_PATH_PARTS][KEY_PART_MAX];
	double deadline = clk_now() + (double)c->task_lookup_s;
	unsigned delay_ms = 100;

	if (path_split(path, part) < 2)
		return phx_err_set(err, PHX_E_INTERNAL, "'%s' names no node", path);
	for (;;) {
		struct buf seen = BUF_INIT;
		char *upid = NULL;
		int n = task_find(c, part[1], k, sent_at - PVE_SINCE_SLACK_S, false, &upid, &seen,
				  err);

		if (n == 1) {
			buf_release(&seen);
			*ret_upid = upid;
			return 0;
		}
		free(upid);
		if (n > 1)
			phx_err_set(err, PHX_E_API, "%d %s tasks for '%s' on node '%s' (%s)", n,
				    k->type, k->id ? k->id : "", part[1], buf_str(&seen));
		buf_release(&seen);
		if (n != 0)
			return -1;
		if (clk_now() > deadline)
			return phx_err_set(err, PHX_E_API,
					   "no %s task for '%s' on node '%s' after %ld s: its answer "
					   "was null and the task list shows none",
					   k->type, k->id ? k->id : "", part[1], c->task_lookup_s);
		clk_sleep_ms(delay_ms);
		if (delay_ms < 1000)
			delay_ms *= 2;
	}
}

int pve_request_task_key(struct pve_client *c, const char *method, const char *path,
			 const struct pve_param *params, size_t n_params,
			 const struct pve_task_key *key, long timeout_s, struct phx_err *err)
{
	struct task_key_buf guess;

	if (!key && task_key_guess(method, path, params, n_params, &guess))
		key = &guess.key;
	for (int attempt = 1;; attempt++) {
		struct phx_err e = PHX_ERR_INIT;
		/* the server's clock when the request leaves: tasks it starts begin later */
		long long sent_at = (long long)time(NULL) + c->clock_offset;
		json_t *root = NULL, *data;
		char *found = NULL;
		bool lost = false;
		int rc;

		if (task_null_forks(key) && task_forget_earlier(c, path, key, sent_at, &e) < 0) {
			if (err && !phx_err_is_set(err))
				*err = e;
			return phx_err_wrap(err, "%s %s", method, path);
		}
		if (pve_call(c, method, path, params, n_params, NULL, &root, &lost, &e) < 0) {
			if (!lost || task_recover(c, path, key, sent_at, &found, &e) < 0) {
				if (err && !phx_err_is_set(err))
					*err = e;
				return -1;
			}
			data = json_string(found);
			free(found);
			if (!data)
				return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		} else {
			data = json_incref(json_object_get(root, "data"));
			json_decref(root);
		}
		if (json_is_null(data) && task_null_forks(key)) {
			json_decref(data);
			if (task_follow(c, path, key, sent_at, &found, &e) < 0) {
				if (err && !phx_err_is_set(err))
					*err = e;
				return phx_err_wrap(err, "%s %s", method, path);
			}
			data = json_string(found);
			free(found);
			if (!data)
				return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		}
		if (json_is_null(data)) {
			json_decref(data);
			return 0;
		}
		if (!json_is_string(data)) {
			json_decref(data);
			return phx_err_set(err, PHX_E_API,
					   "%s %s: expected a task id (UPID) in the answer", method,
					   path);
		}
		rc = pve_task_wait(c, json_string_value(data), timeout_s, NULL, &e);
		json_decref(data);
		if (rc == 0)
			return 0;
		/* Config-lock timeouts happen inside the worker for clone, template and resize
		 * (qemu-server API2/Qemu.pm clone_vm, template, resize_vm) and for POST .../config
		 * from qemu-server 9.1.19: the task failed before it changed anything, so it is
		 * retried like a lock timeout that arrives as an HTTP error. */
		if (e.code == PHX_E_TASK && pve_is_lock_timeout(e.msg) && attempt < c->max_tries) {
			unsigned ms = backoff_ms(c, attempt);

			log_debug("%s %s: %s; retrying in %u ms (attempt %d of %d)", method, path,
				  e.msg, ms, attempt + 1, c->max_tries);
			clk_sleep_ms(ms);
			continue;
		}
		if (err && !phx_err_is_set(err))
			*err = e;
		return phx_err_wrap(err, "%s %s", method, path);
	}
}

int pve_request_task(struct pve_client *c, const char *method, const char *path,
		     const struct pve_param *params, size_t n_params, long timeout_s,
		     struct phx_err *err)
{
	return pve_request_task_key(c, method, path, params, n_params, NULL, timeout_s, err);
}

/* ---- upload ---- */

int pve_upload_multipart(struct pve_client *c, const char *path,
			 const struct http_form_field *fields, size_t n_fields,
			 const char *filename, const char *file_path,
			 const struct http_progress *progress, json_t **ret_data,
			 struct phx_err *err)
{
	struct http_response resp;
	char *url = NULL;
	json_t *root = NULL;
	int attempt, rc = -1;

	/* NEEDSWORK: an upload whose answer is lost is reported and never sent again (a fresh
	 * connection, no retry), but its imgcopy task (no id, pve-storage Status.pm upload) is
	 * not looked up as pve_request_task_key does for the other changing requests. */
	if (c->read_only)
		return phx_err_set(err, PHX_E_INTERNAL,
				   "POST %s: refused, this run is read-only (--dry-run)", path);
	if (asprintf(&url, "%s%s", c->base, path) < 0)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	http_response_init(&resp);
	for (attempt = 1;; attempt++) {
		struct phx_err e = PHX_ERR_INIT;

		if (http_upload_file(c->http, url, fields, n_fields, "filename", filename,
				     file_path, progress, &resp, &e) < 0) {
			phx_err_wrap(&e, "POST %s", path);
		} else if (resp.status >= 200 && resp.status < 300) {
			char what[512];

			snprintf(what, sizeof(what), "POST %s", path);
			if (envelope_root(resp.body.data, resp.body.len, what, &root, err) == 0) {
				if (ret_data)
					*ret_data = json_incref(json_object_get(root, "data"));
				rc = 0;
			}
			break;
		} else {
			pve_error_from_http("POST", path, resp.status, resp.reason, resp.body.data,
					    resp.body.len, &e);
			if (attempt < c->max_tries && (pve_is_lock_timeout(resp.reason) ||
						       pve_is_lock_timeout(buf_str(&resp.body)))) {
				clk_sleep_ms(backoff_ms(c, attempt));
				continue;
			}
		}
		if (err && !phx_err_is_set(err))
			*err = e;
		break;
	}
	json_decref(root);
	http_response_release(&resp);
	free(url);
	return rc;
}
