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
	free(c);
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

/* One API call with retries; on success *ret_root is the whole envelope. */
static int pve_call(struct pve_client *c, const char *method, const char *path,
		    const struct pve_param *params, size_t n_params, const json_t *json_body,
		    json_t **ret_root, struct phx_err *err)
{
	struct buf url = BUF_INIT, form = BUF_INIT;
	char *json_text = NULL;
	struct http_response resp;
	struct http_request req;
	bool idempotent = strcmp(method, "GET") == 0;
	bool body_params = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
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
		bool retry = false;

		if (http_perform(c->http, &req, &resp, &e) < 0) {
			phx_err_wrap(&e, "%s %s", method, path);
			retry = idempotent && e.code == PHX_E_NET;
		} else if (resp.status >= 200 && resp.status < 300) {
			char what[512];

			snprintf(what, sizeof(what), "%s %s", method, path);
			rc = envelope_root(resp.body.data, resp.body.len, what, ret_root, err);
			goto out;
		} else {
			pve_error_from_http(method, path, resp.status, resp.reason, resp.body.data,
					    resp.body.len, &e);
			/* 5xx on a GET is retried (59x are pveproxy's timeouts); anything else
			 * may have done something, except a lock timeout, which by definition
			 * ran nothing */
			retry = (idempotent && resp.status >= 500 &&
				 !pve_error_is_deterministic(resp.status, e.msg)) ||
				pve_is_lock_timeout(resp.reason) ||
				pve_is_lock_timeout(buf_str(&resp.body));
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

int pve_request(struct pve_client *c, const char *method, const char *path,
		const struct pve_param *params, size_t n_params, json_t **ret_data,
		struct phx_err *err)
{
	json_t *root;

	if (pve_call(c, method, path, params, n_params, NULL, &root, err) < 0)
		return -1;
	if (ret_data)
		*ret_data = json_incref(json_object_get(root, "data"));
	json_decref(root);
	return 0;
}

int pve_request_json(struct pve_client *c, const char *method, const char *path,
		     const json_t *body, json_t **ret_data, struct phx_err *err)
{
	json_t *root;

	if (pve_call(c, method, path, NULL, 0, body, &root, err) < 0)
		return -1;
	if (ret_data)
		*ret_data = json_incref(json_object_get(root, "data"));
	json_decref(root);
	return 0;
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

	if (!path || pve_call(c, "GET", path, first, 2, NULL, &root, NULL) < 0)
		goto out;
	if (pve_json_int(json_object_get(root, "total"), "total", &total, NULL) == 0 &&
	    total > TASK_LOG_PAGE) {
		snprintf(start, sizeof(start), "%lld", total - TASK_TAIL_LINES);
		json_decref(root);
		root = NULL;
		if (pve_call(c, "GET", path, last, 2, NULL, &root, NULL) < 0)
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

int pve_task_wait(struct pve_client *c, const char *upid, long timeout_s,
		  unsigned *ret_warnings, struct phx_err *err)
{
	char node[256];
	char *path;
	double start = clk_now(), elapsed;
	unsigned delay_ms = 50;
	int rc = -1;

	if (pve_upid_node(upid, node, sizeof(node), err) < 0)
		return -1;
	if (timeout_s <= 0)
		timeout_s = PVE_TASK_TIMEOUT_DEFAULT;
	path = pve_path(err, "nodes", node, "tasks", upid, "status", NULL);
	if (!path)
		return -1;
	for (;;) {
		enum pve_task_state state;
		const char *exit;
		json_t *data = NULL;

		clk_sleep_ms(delay_ms);
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

int pve_request_task(struct pve_client *c, const char *method, const char *path,
		     const struct pve_param *params, size_t n_params, long timeout_s,
		     struct phx_err *err)
{
	for (int attempt = 1;; attempt++) {
		struct phx_err e = PHX_ERR_INIT;
		json_t *data = NULL;
		int rc;

		if (pve_request(c, method, path, params, n_params, &data, err) < 0)
			return -1;
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
