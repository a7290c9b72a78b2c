/* cloudinit: user-data, meta-data and network-config v2 through the libyaml emitter, the
 * instance-id, and Proxmox's native sshkeys/ipconfig values. See cloudinit.h for why feature
 * scripts are write_files + runcmd. This is the only file that writes YAML; the decision of
 * which scalar may be plain lives in ci_plain_is_safe() and nowhere else. */
#include "cloudinit.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "buf.h"
#include "crypto.h"

/* user-data, meta-data and network-config are a few KiB; feature scripts and write_files
 * content are the only big parts. Proxmox's own cicustom limit is 1 MiB per file. */
#define CI_OUT_MAX ((size_t)4 << 20)
#define CI_LABEL_MAX 96

struct ci_emit {
	yaml_emitter_t em;
	struct buf out;
	struct phx_err *err;
	bool write_failed; /* the buffer cap hit; err already holds the cause */
};

static int ci_write_handler(void *data, unsigned char *buffer, size_t size)
{
	struct ci_emit *e = data;

	if (buf_append(&e->out, buffer, size, e->err) < 0) {
		e->write_failed = true;
		return 0;
	}
	return 1;
}

static int ci_emit_init(struct ci_emit *e, const char *header, struct phx_err *err)
{
	memset(e, 0, sizeof(*e));
	buf_init(&e->out, CI_OUT_MAX);
	e->err = err;
	if (!yaml_emitter_initialize(&e->em))
		return phx_err_set(err, PHX_E_NOMEM, "yaml emitter: out of memory");
	yaml_emitter_set_output(&e->em, ci_write_handler, e);
	/* Never fold long lines (an SSH key must stay one line) and keep UTF-8 as is: both make
	 * the output readable and independent of libyaml's defaults. */
	yaml_emitter_set_width(&e->em, -1);
	yaml_emitter_set_unicode(&e->em, 1);
	yaml_emitter_set_indent(&e->em, 2);
	yaml_emitter_set_break(&e->em, YAML_LN_BREAK);
	if (header && buf_puts(&e->out, header, err) < 0)
		return -1;
	return 0;
}

static void ci_emit_release(struct ci_emit *e)
{
	yaml_emitter_delete(&e->em);
	buf_release(&e->out);
}

/* Emits (and always consumes) one event. `what` names the value for error messages. */
static int ci_emit_event(struct ci_emit *e, yaml_event_t *ev, const char *what)
{
	if (yaml_emitter_emit(&e->em, ev))
		return 0;
	if (e->write_failed)
		return phx_err_wrap(e->err, "rendering %s", what);
	return phx_err_set(e->err, PHX_E_INTERNAL, "yaml emitter at %s: %s", what,
			   e->em.problem ? e->em.problem : "unknown error");
}

/* YAML 1.1 (what cloud-init's PyYAML resolves) turns these plain words into booleans or null;
 * compared case-insensitively, which quotes a few more spellings than needed (harmless). */
static const char *const ci_yaml11_words[] = {
	"y", "n", "yes", "no", "true", "false", "on", "off", "null",
};

/* A value may be plain only when no YAML 1.1 resolver could read it as anything but this
 * string: it starts with a letter or '/', so it is never a number, date, sexagesimal,
 * .inf/.nan, alias, anchor, tag, comment, directive or indicator; it holds only characters
 * with no meaning in block context (no ':', '#', quotes, brackets, commas); it has no leading
 * or trailing space; and it is not a boolean/null word. Everything else is quoted. */
static bool ci_plain_is_safe(const char *s)
{
	size_t len = strlen(s);

	if (len == 0)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '/'))
		return false;
	if (s[len - 1] == ' ')
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || strchr("_./@+=- ", c) != NULL;

		if (!ok)
			return false;
	}
	for (size_t i = 0; i < sizeof(ci_yaml11_words) / sizeof(ci_yaml11_words[0]); i++)
		if (strcasecmp(s, ci_yaml11_words[i]) == 0)
			return false;
	return true;
}

/* A string value: literal block for multi-line text (libyaml itself falls back to
 * double-quoted when a block scalar cannot represent it, e.g. trailing spaces or control
 * characters), plain only when ci_plain_is_safe(), double-quoted otherwise. */
static int ci_str(struct ci_emit *e, const char *value, const char *what)
{
	yaml_event_t ev;
	yaml_scalar_style_t style;
	bool plain;

	if (!value)
		return phx_err_set(e->err, PHX_E_INPUT, "%s: missing value", what);
	/* A YAML parser folds every CR, CRLF, NEL, LS and PS in a block scalar into LF: text
	 * with those keeps its bytes only double-quoted (escaped). */
	if (strchr(value, '\n') && !strchr(value, '\r') && !strstr(value, "\xc2\x85") &&
	    !strstr(value, "\xe2\x80\xa8") && !strstr(value, "\xe2\x80\xa9"))
		style = YAML_LITERAL_SCALAR_STYLE;
	else if (ci_plain_is_safe(value))
		style = YAML_PLAIN_SCALAR_STYLE;
	else
		style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	plain = style == YAML_PLAIN_SCALAR_STYLE;
	/* libyaml rejects invalid UTF-8 here and only here */
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)value, (int)strlen(value),
					  plain, !plain, style))
		return phx_err_set(e->err, PHX_E_INPUT, "%s: not valid UTF-8 text", what);
	return ci_emit_event(e, &ev, what);
}

/* Our own keys and YAML-typed values (true, 2): plain, never quoted, so they keep their
 * type. Only ever called with literals from this file. */
static int ci_raw(struct ci_emit *e, const char *token)
{
	yaml_event_t ev;

	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)token, (int)strlen(token),
					  1, 0, YAML_PLAIN_SCALAR_STYLE))
		return phx_err_set(e->err, PHX_E_NOMEM, "yaml emitter: out of memory");
	return ci_emit_event(e, &ev, token);
}

static int ci_key_str(struct ci_emit *e, const char *key, const char *value, const char *what)
{
	if (ci_raw(e, key) < 0)
		return -1;
	return ci_str(e, value, what);
}

static int ci_map_start(struct ci_emit *e)
{
	yaml_event_t ev;

	if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE))
		return phx_err_set(e->err, PHX_E_NOMEM, "yaml emitter: out of memory");
	return ci_emit_event(e, &ev, "mapping");
}

static int ci_map_end(struct ci_emit *e)
{
	yaml_event_t ev;

	if (!yaml_mapping_end_event_initialize(&ev))
		return phx_err_set(e->err, PHX_E_NOMEM, "yaml emitter: out of memory");
	return ci_emit_event(e, &ev, "mapping end");
}

static int ci_seq_start(struct ci_emit *e, bool flow)
{
	yaml_event_t ev;

	if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
						  flow ? YAML_FLOW_SEQUENCE_STYLE
						       : YAML_BLOCK_SEQUENCE_STYLE))
		return phx_err_set(e->err, PHX_E_NOMEM, "yaml emitter: out of memory");
	return ci_emit_event(e, &ev, "sequence");
}

static int ci_seq_end(struct ci_emit *e)
{
	yaml_event_t ev;

	if (!yaml_sequence_end_event_initialize(&ev))
		return phx_err_set(e->err, PHX_E_NOMEM, "yaml emitter: out of memory");
	return ci_emit_event(e, &ev, "sequence end");
}

/* `key: [v0, v1, ...]` as a block sequence; values are labelled `<field>[i]` in errors. */
static int ci_key_list(struct ci_emit *e, const char *key, const char *const *v, size_t n,
		       const char *field)
{
	char what[CI_LABEL_MAX];

	if (ci_raw(e, key) < 0 || ci_seq_start(e, false) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		snprintf(what, sizeof(what), "%s[%zu]", field, i);
		if (ci_str(e, v[i], what) < 0)
			return -1;
	}
	return ci_seq_end(e);
}

static int ci_doc_start(struct ci_emit *e)
{
	yaml_event_t ev;

	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING))
		return phx_err_set(e->err, PHX_E_NOMEM, "yaml emitter: out of memory");
	if (ci_emit_event(e, &ev, "stream") < 0)
		return -1;
	if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1))
		return phx_err_set(e->err, PHX_E_NOMEM, "yaml emitter: out of memory");
	return ci_emit_event(e, &ev, "document");
}

/* Ends the document and hands the text over (malloc'd, caller frees). */
static int ci_doc_finish(struct ci_emit *e, char **ret, size_t *ret_len)
{
	yaml_event_t ev;
	size_t len;
	char *s;

	if (!yaml_document_end_event_initialize(&ev, 1))
		return phx_err_set(e->err, PHX_E_NOMEM, "yaml emitter: out of memory");
	if (ci_emit_event(e, &ev, "document end") < 0)
		return -1;
	if (!yaml_stream_end_event_initialize(&ev))
		return phx_err_set(e->err, PHX_E_NOMEM, "yaml emitter: out of memory");
	/* the stream end flushes the emitter into e->out */
	if (ci_emit_event(e, &ev, "stream end") < 0)
		return -1;
	len = e->out.len;
	s = buf_detach(&e->out);
	if (!s)
		return phx_err_set(e->err, PHX_E_NOMEM, "out of memory");
	*ret = s;
	*ret_len = len;
	return 0;
}

/* --- input checks: the config layer validates meaning; these keep the YAML well-formed and
 * the guest paths safe, whoever fills the struct. --- */

static bool ci_name_is_safe(const char *s)
{
	if (!s || !*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return false;
	return true;
}

/* Returns AF_INET/AF_INET6, or 0 when `s` is not an address. */
static int ci_addr_family(const char *s)
{
	unsigned char a[sizeof(struct in6_addr)];

	if (!s)
		return 0;
	if (inet_pton(AF_INET, s, a) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, a) == 1)
		return AF_INET6;
	return 0;
}

/* "addr/prefix" with a prefix in range; returns the family or 0. */
static int ci_cidr_family(const char *s)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = s ? strchr(s, '/') : NULL;
	size_t alen;
	char *end;
	long prefix;
	int fam;

	if (!slash || slash == s)
		return 0;
	alen = (size_t)(slash - s);
	if (alen >= sizeof(addr))
		return 0;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	fam = ci_addr_family(addr);
	if (!fam || !slash[1] || slash[1] < '0' || slash[1] > '9')
		return 0;
	prefix = strtol(slash + 1, &end, 10);
	if (*end || prefix < 0 || prefix > (fam == AF_INET ? 32 : 128))
		return 0;
	return fam;
}

static bool ci_mac_is_valid(const char *s)
{
	if (!s || strlen(s) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		char c = s[i];

		if (i % 3 == 2) {
			if (c != ':')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return true;
}

static int ci_check_list(const char *const *v, size_t n, const char *field, struct phx_err *err)
{
	if (n && !v)
		return phx_err_set(err, PHX_E_INTERNAL, "%s: %zu entries but no array", field, n);
	for (size_t i = 0; i < n; i++)
		if (!v[i] || !*v[i])
			return phx_err_set(err, PHX_E_INPUT, "%s[%zu]: empty value", field, i);
	return 0;
}

static int ci_check_network(const struct ci_network *net, struct phx_err *err)
{
	int fam = 0;

	if (!ci_mac_is_valid(net->mac))
		return phx_err_set(err, PHX_E_INPUT,
				   "network.mac: expected a MAC like 'BC:24:11:00:00:01', got '%s'",
				   net->mac ? net->mac : "(none)");
	if (net->ip_cidr) {
		fam = ci_cidr_family(net->ip_cidr);
		if (!fam)
			return phx_err_set(err, PHX_E_INPUT,
					   "network.ip: expected CIDR like '10.0.0.5/24', got '%s'",
					   net->ip_cidr);
	}
	if (net->gateway) {
		if (!net->ip_cidr)
			return phx_err_set(err, PHX_E_INPUT,
					   "network.gateway: '%s' needs a static address (ip)",
					   net->gateway);
		if (ci_addr_family(net->gateway) != fam)
			return phx_err_set(
				err, PHX_E_INPUT,
				"network.gateway: expected an address of the same family "
				"as '%s', got '%s'",
				net->ip_cidr, net->gateway);
	}
	if (net->ip6 && strcmp(net->ip6, "dhcp") && strcmp(net->ip6, "auto") &&
	    ci_cidr_family(net->ip6) != AF_INET6)
		return phx_err_set(err, PHX_E_INPUT,
				   "network.ip6: expected an IPv6 CIDR, 'dhcp' or 'auto', got '%s'",
				   net->ip6);
	if (net->gateway6 && (!net->ip6 || !strchr(net->ip6, '/') ||
			      ci_addr_family(net->gateway6) != AF_INET6))
		return phx_err_set(err, PHX_E_INPUT,
				   "network.gateway6: '%s' needs a static IPv6 address (ip6)",
				   net->gateway6);
	for (size_t i = 0; i < net->n_routes; i++) {
		const struct ci_route *r = &net->routes[i];

		if (!r->to || !r->via || !ci_cidr_family(r->to) ||
		    ci_cidr_family(r->to) != ci_addr_family(r->via))
			return phx_err_set(err, PHX_E_INPUT,
					   "network.routes[%zu]: expected a CIDR and an address of "
					   "its family, got '%s' via '%s'",
					   i, r->to ? r->to : "", r->via ? r->via : "");
	}
	if (ci_check_list(net->dns_servers, net->n_dns_servers, "network.dns_servers", err) < 0 ||
	    ci_check_list(net->search_domains, net->n_search_domains, "network.search_domains",
			  err) < 0)
		return -1;
	for (size_t i = 0; i < net->n_dns_servers; i++)
		if (!ci_addr_family(net->dns_servers[i]))
			return phx_err_set(
				err, PHX_E_INPUT,
				"network.dns_servers[%zu]: expected an IP address, got '%s'", i,
				net->dns_servers[i]);
	return 0;
}

static int ci_check_input(const struct ci_input *in, struct phx_err *err)
{
	const struct ci_user *u = &in->user;

	if (!in->hostname || !*in->hostname)
		return phx_err_set(err, PHX_E_INPUT, "hostname: missing");
	if (!u->name || !*u->name)
		return phx_err_set(err, PHX_E_INPUT, "user.name: missing");
	if (ci_check_list(u->ssh_keys, u->n_ssh_keys, "user.ssh_keys", err) < 0 ||
	    ci_check_list(u->groups, u->n_groups, "user.groups", err) < 0 ||
	    ci_check_list(in->packages, in->n_packages, "packages", err) < 0)
		return -1;
	if ((in->n_write_files && !in->write_files) || (in->n_features && !in->features))
		return phx_err_set(err, PHX_E_INTERNAL,
				   "write_files/features: count without array");
	for (size_t i = 0; i < in->n_write_files; i++) {
		const struct ci_write_file *f = &in->write_files[i];

		if (!f->path || f->path[0] != '/')
			return phx_err_set(
				err, PHX_E_INPUT,
				"write_files[%zu].path: expected an absolute path, got '%s'", i,
				f->path ? f->path : "(none)");
		if (!f->content)
			return phx_err_set(err, PHX_E_INPUT, "write_files[%zu].content: missing",
					   i);
	}
	for (size_t i = 0; i < in->n_features; i++) {
		const struct ci_feature *f = &in->features[i];

		if (!ci_name_is_safe(f->name))
			return phx_err_set(
				err, PHX_E_INPUT,
				"features[%zu].name: expected letters, digits, '_', '.', "
				"'-', got '%s'",
				i, f->name ? f->name : "(none)");
		if (!f->script_content)
			return phx_err_set(err, PHX_E_INPUT, "features[%zu] '%s': no script", i,
					   f->name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(in->features[j].name, f->name) == 0)
				return phx_err_set(err, PHX_E_INPUT,
						   "features[%zu]: '%s' listed twice", i, f->name);
	}
	return 0;
}

/* --- MIME multipart parts --- */

static bool ci_is_yaml_mapping(const char *text)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	bool mapping = false, seen = false, done = false;

	if (!yaml_parser_initialize(&parser))
		return false;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
	/* the whole stream must parse; its first node must be a mapping */
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			mapping = false;
			break;
		}
		if (!seen && (ev.type == YAML_MAPPING_START_EVENT ||
			      ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_SCALAR_EVENT ||
			      ev.type == YAML_ALIAS_EVENT)) {
			seen = true;
			mapping = ev.type == YAML_MAPPING_START_EVENT;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return mapping;
}

static int ci_check_parts(const struct ci_part *parts, size_t n, const char *what,
			  struct phx_err *err)
{
	if (n && !parts)
		return phx_err_set(err, PHX_E_INTERNAL, "%s: count without array", what);
	for (size_t i = 0; i < n; i++) {
		const struct ci_part *p = &parts[i];

		if (!p->type || !*p->type || strpbrk(p->type, "\r\n\";"))
			return phx_err_set(err, PHX_E_INPUT, "%s[%zu].type: expected a MIME type "
							     "like 'text/x-shellscript'",
					   what, i);
		if (!p->content || !*p->content)
			return phx_err_set(err, PHX_E_INPUT, "%s[%zu]: empty content", what, i);
		/* cloud-init runs a script part by executing it: the kernel needs the #! */
		if (!strncmp(p->type, "text/x-shellscript", 18) && strncmp(p->content, "#!", 2))
			return phx_err_set(err, PHX_E_INPUT,
					   "%s[%zu]: a %s part must start with '#!' (cloud-init "
					   "executes it), got '%.20s'",
					   what, i, p->type, p->content);
		if (!strcmp(p->type, "text/cloud-config") &&
		    (strncmp(p->content, "#cloud-config", 13) ||
		     !strchr("\r\n", p->content[13]) || !ci_is_yaml_mapping(p->content)))
			return phx_err_set(err, PHX_E_INPUT,
					   "%s[%zu]: a text/cloud-config part must be a YAML "
					   "mapping after a first line '#cloud-config'",
					   what, i);
	}
	return 0;
}

/* "==phoenix-<16 hex>==": from the content, so the same input gives the same bytes. */
static int ci_boundary(const char *first, const struct ci_part *parts, size_t n, char ret[32],
		       struct phx_err *err)
{
	char hex[CRYPTO_SHA256_HEX_LEN + 1];
	struct crypto_sha256 *h = crypto_sha256_new(err);
	int rc = -1;

	if (!h)
		return -1;
	if (first && crypto_sha256_update(h, first, strlen(first) + 1, err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (crypto_sha256_update(h, parts[i].type, strlen(parts[i].type) + 1, err) < 0 ||
		    crypto_sha256_update(h, parts[i].content, strlen(parts[i].content) + 1, err) <
			    0)
			goto out;
	if (crypto_sha256_final(h, hex, err) < 0)
		goto out;
	snprintf(ret, 32, "==phoenix-%.16s==", hex);
	rc = 0;
	for (size_t i = 0; i < n && !rc; i++)
		if (strstr(parts[i].content, ret))
			rc = phx_err_set(err, PHX_E_INPUT, "part %zu contains the MIME boundary '%s'",
					 i, ret);
out:
	crypto_sha256_free(h);
	return rc;
}

static int ci_mime_part(struct buf *b, const char *boundary, const char *type, const char *name,
			const char *merge, const char *content, struct phx_err *err)
{
	/* the line break before the next delimiter belongs to the delimiter (RFC 2046 5.1.1):
	 * one is always added, so the content comes back byte for byte */
	return buf_printf(b, err,
			  "--%s\nContent-Type: %s; charset=\"utf-8\"\nMIME-Version: 1.0\n"
			  "Content-Transfer-Encoding: 8bit\n"
			  "Content-Disposition: attachment; filename=\"%s\"\n%s%s%s\n%s\n",
			  boundary, type, name, merge ? "Merge-Type: " : "", merge ? merge : "",
			  merge ? "\n" : "", content);
}

/* `first`: our #cloud-config document, or NULL (vendor-data). Writes *ret only on success. */
static int ci_mime(const char *first, const struct ci_part *parts, size_t n, bool merge,
		   char **ret, size_t *ret_len, struct phx_err *err)
{
	struct buf b = BUF_INIT;
	char boundary[32], name[32];
	size_t len;

	if (ci_boundary(first, parts, n, boundary, err) < 0)
		return -1;
	buf_init(&b, CI_OUT_MAX);
	if (buf_printf(&b, err,
		       "Content-Type: multipart/mixed; boundary=\"%s\"\nMIME-Version: 1.0\n\n",
		       boundary) < 0 ||
	    (first && ci_mime_part(&b, boundary, "text/cloud-config", "phoenix.cfg", NULL, first,
				   err) < 0))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		bool cc = !strcmp(parts[i].type, "text/cloud-config");

		/* a script part is saved under its filename: each needs its own */
		snprintf(name, sizeof(name), "part-%03zu", i + 1);
		if (ci_mime_part(&b, boundary, parts[i].type, name,
				 merge && cc ? "list(append)+dict(no_replace,recurse_list)+str()"
					     : NULL,
				 parts[i].content, err) < 0)
			goto fail;
	}
	if (buf_printf(&b, err, "--%s--\n", boundary) < 0)
		goto fail;
	len = b.len;
	if (!(*ret = buf_detach(&b)))
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	*ret_len = len;
	return 0;
fail:
	buf_release(&b);
	return -1;
}

int ci_render_vendor_data(const struct ci_input *in, char **ret, size_t *ret_len,
			  struct phx_err *err)
{
	if (ci_check_parts(in->vendor_parts, in->n_vendor_parts, "vendor_data", err) < 0)
		return -1;
	if (!in->n_vendor_parts) {
		*ret = NULL;
		*ret_len = 0;
		return 0;
	}
	return ci_mime(NULL, in->vendor_parts, in->n_vendor_parts, false, ret, ret_len, err);
}

/* --- user-data --- */

static int ci_emit_user(struct ci_emit *e, const struct ci_user *u)
{
	const char *sudo = u->sudo ? u->sudo : CI_DEFAULT_SUDO;

	if (ci_raw(e, "users") < 0 || ci_seq_start(e, false) < 0 || ci_map_start(e) < 0 ||
	    ci_key_str(e, "name", u->name, "user.name") < 0)
		return -1;
	if (u->password_hash) {
		if (ci_key_str(e, "passwd", u->password_hash, "user.password_hash") < 0 ||
		    ci_raw(e, "lock_passwd") < 0 || ci_raw(e, "false") < 0)
			return -1;
	} else if (ci_raw(e, "lock_passwd") < 0 || ci_raw(e, "true") < 0) {
		return -1;
	}
	if (u->n_ssh_keys &&
	    ci_key_list(e, "ssh_authorized_keys", u->ssh_keys, u->n_ssh_keys, "user.ssh_keys") < 0)
		return -1;
	if (*sudo && ci_key_str(e, "sudo", sudo, "user.sudo") < 0)
		return -1;
	if (ci_key_str(e, "shell", u->shell ? u->shell : CI_DEFAULT_SHELL, "user.shell") < 0)
		return -1;
	if (u->n_groups && ci_key_list(e, "groups", u->groups, u->n_groups, "user.groups") < 0)
		return -1;
	return ci_map_end(e) < 0 || ci_seq_end(e) < 0 ? -1 : 0;
}

static int ci_emit_write_file(struct ci_emit *e, const char *path, const char *content,
			      const char *perms, const char *owner, const char *label)
{
	char what[CI_LABEL_MAX];

	snprintf(what, sizeof(what), "%s.path", label);
	if (ci_map_start(e) < 0 || ci_key_str(e, "path", path, what) < 0)
		return -1;
	snprintf(what, sizeof(what), "%s.content", label);
	if (ci_key_str(e, "content", content, what) < 0)
		return -1;
	snprintf(what, sizeof(what), "%s.permissions", label);
	if (perms && ci_key_str(e, "permissions", perms, what) < 0)
		return -1;
	snprintf(what, sizeof(what), "%s.owner", label);
	if (owner && ci_key_str(e, "owner", owner, what) < 0)
		return -1;
	return ci_map_end(e);
}

static int ci_emit_features(struct ci_emit *e, const struct ci_input *in)
{
	char path[sizeof(CI_FEATURE_DIR) + 256];
	char env[256];
	char label[CI_LABEL_MAX];

	if (ci_raw(e, "runcmd") < 0 || ci_seq_start(e, false) < 0)
		return -1;
	for (size_t i = 0; i < in->n_features; i++) {
		snprintf(label, sizeof(label), "features[%zu]", i);
		if ((size_t)snprintf(path, sizeof(path), "%s/%s.sh", CI_FEATURE_DIR,
				     in->features[i].name) >= sizeof(path))
			return phx_err_set(e->err, PHX_E_INPUT, "%s.name: too long", label);
		if ((size_t)snprintf(env, sizeof(env), "PHOENIX_USER=%s", in->user.name) >=
		    sizeof(env))
			return phx_err_set(e->err, PHX_E_INPUT, "user.name: too long");
		/* exec form: cloud-init runs the list without a shell, so no quoting exists */
		if (ci_seq_start(e, true) < 0 || ci_str(e, "env", label) < 0 ||
		    ci_str(e, env, "user.name") < 0 || ci_str(e, "/bin/sh", label) < 0 ||
		    ci_str(e, path, label) < 0 || ci_seq_end(e) < 0)
			return -1;
	}
	return ci_seq_end(e);
}

int ci_render_user_data(const struct ci_input *in, char **ret, size_t *ret_len, struct phx_err *err)
{
	struct ci_emit e;
	char label[CI_LABEL_MAX];
	char path[sizeof(CI_FEATURE_DIR) + 256];
	int rc = -1;

	if (ci_check_input(in, err) < 0 ||
	    ci_check_parts(in->parts, in->n_parts, "user_data_parts", err) < 0)
		return -1;
	/* The header is a YAML comment that cloud-init requires on the first line; it is the
	 * only text not produced by the emitter. */
	if (ci_emit_init(&e, "#cloud-config\n", err) < 0)
		goto out;
	if (ci_doc_start(&e) < 0 || ci_map_start(&e) < 0 ||
	    ci_key_str(&e, "hostname", in->hostname, "hostname") < 0)
		goto out;
	if (in->fqdn && ci_key_str(&e, "fqdn", in->fqdn, "fqdn") < 0)
		goto out;
	if (ci_raw(&e, "manage_etc_hosts") < 0 || ci_raw(&e, "true") < 0)
		goto out;
	if (ci_emit_user(&e, &in->user) < 0)
		goto out;
	if (in->n_packages &&
	    ci_key_list(&e, "packages", in->packages, in->n_packages, "packages") < 0)
		goto out;
	if (in->n_write_files + in->n_features) {
		if (ci_raw(&e, "write_files") < 0 || ci_seq_start(&e, false) < 0)
			goto out;
		for (size_t i = 0; i < in->n_write_files; i++) {
			const struct ci_write_file *f = &in->write_files[i];

			snprintf(label, sizeof(label), "write_files[%zu]", i);
			if (ci_emit_write_file(&e, f->path, f->content, f->permissions, f->owner,
					       label) < 0)
				goto out;
		}
		for (size_t i = 0; i < in->n_features; i++) {
			snprintf(label, sizeof(label), "features[%zu]", i);
			snprintf(path, sizeof(path), "%s/%s.sh", CI_FEATURE_DIR,
				 in->features[i].name);
			if (ci_emit_write_file(&e, path, in->features[i].script_content, "0755",
					       "root:root", label) < 0)
				goto out;
		}
		if (ci_seq_end(&e) < 0)
			goto out;
	}
	if (in->n_features && ci_emit_features(&e, in) < 0)
		goto out;
	if (ci_map_end(&e) < 0)
		goto out;
	if (!in->n_parts) {
		rc = ci_doc_finish(&e, ret, ret_len);
		goto out;
	}
	{
		char *doc;
		size_t doc_len;

		if (ci_doc_finish(&e, &doc, &doc_len) < 0)
			goto out;
		rc = ci_mime(doc, in->parts, in->n_parts, true, ret, ret_len, err);
		free(doc);
	}
out:
	ci_emit_release(&e);
	return rc;
}

/* --- network-config v2 --- */

static int ci_route(struct ci_emit *e, const char *to, const char *via, const char *what)
{
	return ci_map_start(e) < 0 || ci_key_str(e, "to", to, what) < 0 ||
			       ci_key_str(e, "via", via, what) < 0 || ci_map_end(e) < 0
		       ? -1
		       : 0;
}

/* One ethernets entry "eth<idx>". */
static int ci_render_nic(struct ci_emit *e, const struct ci_network *net, size_t idx)
{
	char mac[18], name[16];
	const char *addrs[2];
	size_t n_addrs = 0;
	bool v6_static = net->ip6 && strchr(net->ip6, '/');

	/* Proxmox prints MACs upper-case; netplan and cloud-init compare them lower-case. */
	for (int i = 0; i < 17; i++)
		mac[i] = (net->mac[i] >= 'A' && net->mac[i] <= 'F') ? (char)(net->mac[i] + 32)
								    : net->mac[i];
	mac[17] = '\0';
	snprintf(name, sizeof(name), "eth%zu", idx);
	if (ci_raw(e, name) < 0 || ci_map_start(e) < 0)
		return -1;
	if (ci_raw(e, "match") < 0 || ci_map_start(e) < 0 ||
	    ci_key_str(e, "macaddress", mac, "network.mac") < 0 || ci_map_end(e) < 0 ||
	    ci_key_str(e, "set-name", name, "set-name") < 0)
		return -1;
	if (!net->ip_cidr && !net->no_dhcp4 && (ci_raw(e, "dhcp4") < 0 || ci_raw(e, "true") < 0))
		return -1;
	if (net->ip6 && !strcmp(net->ip6, "dhcp") &&
	    (ci_raw(e, "dhcp6") < 0 || ci_raw(e, "true") < 0))
		return -1;
	/* SLAAC: router advertisements without DHCPv6 (netplan accept-ra) */
	if (net->ip6 && !strcmp(net->ip6, "auto") &&
	    (ci_raw(e, "dhcp6") < 0 || ci_raw(e, "false") < 0 || ci_raw(e, "accept-ra") < 0 ||
	     ci_raw(e, "true") < 0))
		return -1;
	if (net->ip_cidr)
		addrs[n_addrs++] = net->ip_cidr;
	if (v6_static)
		addrs[n_addrs++] = net->ip6;
	if (n_addrs && ci_key_list(e, "addresses", addrs, n_addrs, "network.ip") < 0)
		return -1;
	/* `gateway4`/`gateway6` are deprecated in netplan; default routes are the portable form */
	if ((net->ip_cidr && net->gateway) || (v6_static && net->gateway6) || net->n_routes) {
		if (ci_raw(e, "routes") < 0 || ci_seq_start(e, false) < 0)
			return -1;
		if (net->ip_cidr && net->gateway &&
		    ci_route(e, ci_addr_family(net->gateway) == AF_INET ? "0.0.0.0/0" : "::/0",
			     net->gateway, "network.gateway") < 0)
			return -1;
		if (v6_static && net->gateway6 &&
		    ci_route(e, "::/0", net->gateway6, "network.gateway6") < 0)
			return -1;
		for (size_t i = 0; i < net->n_routes; i++)
			if (ci_route(e, net->routes[i].to, net->routes[i].via, "network.routes") < 0)
				return -1;
		if (ci_seq_end(e) < 0)
			return -1;
	}
	if (net->n_dns_servers + net->n_search_domains) {
		if (ci_raw(e, "nameservers") < 0 || ci_map_start(e) < 0)
			return -1;
		if (net->n_dns_servers &&
		    ci_key_list(e, "addresses", net->dns_servers, net->n_dns_servers,
				"network.dns_servers") < 0)
			return -1;
		if (net->n_search_domains &&
		    ci_key_list(e, "search", net->search_domains, net->n_search_domains,
				"network.search_domains") < 0)
			return -1;
		if (ci_map_end(e) < 0)
			return -1;
	}
	return ci_map_end(e);
}

int ci_render_network_config_n(const struct ci_network *net, const struct ci_network *more,
			       size_t n_more, char **ret, size_t *ret_len, struct phx_err *err)
{
	struct ci_emit e;
	int rc = -1;

	if (ci_check_network(net, err) < 0)
		return -1;
	for (size_t i = 0; i < n_more; i++)
		if (ci_check_network(&more[i], err) < 0)
			return phx_err_wrap(err, "NIC %zu", i + 1);
	if (ci_emit_init(&e, NULL, err) < 0)
		goto out;
	if (ci_doc_start(&e) < 0 || ci_map_start(&e) < 0 || ci_raw(&e, "version") < 0 ||
	    ci_raw(&e, "2") < 0 || ci_raw(&e, "ethernets") < 0 || ci_map_start(&e) < 0 ||
	    ci_render_nic(&e, net, 0) < 0)
		goto out;
	for (size_t i = 0; i < n_more; i++)
		if (ci_render_nic(&e, &more[i], i + 1) < 0)
			goto out;
	if (ci_map_end(&e) < 0 || ci_map_end(&e) < 0 || ci_doc_finish(&e, ret, ret_len) < 0)
		goto out;
	rc = 0;
out:
	ci_emit_release(&e);
	return rc;
}

int ci_render_network_config(const struct ci_network *net, char **ret, size_t *ret_len,
			     struct phx_err *err)
{
	return ci_render_network_config_n(net, NULL, 0, ret, ret_len, err);
}

/* --- meta-data --- */

int ci_render_meta_data(const char *instance_id, const char *hostname, char **ret, size_t *ret_len,
			struct phx_err *err)
{
	struct ci_emit e;
	int rc = -1;

	if (!instance_id || !*instance_id)
		return phx_err_set(err, PHX_E_INPUT, "instance-id: missing");
	if (!hostname || !*hostname)
		return phx_err_set(err, PHX_E_INPUT, "hostname: missing");
	if (ci_emit_init(&e, NULL, err) < 0)
		goto out;
	if (ci_doc_start(&e) < 0 || ci_map_start(&e) < 0 ||
	    ci_key_str(&e, "instance-id", instance_id, "instance-id") < 0 ||
	    ci_key_str(&e, "local-hostname", hostname, "hostname") < 0 || ci_map_end(&e) < 0 ||
	    ci_doc_finish(&e, ret, ret_len) < 0)
		goto out;
	rc = 0;
out:
	ci_emit_release(&e);
	return rc;
}

/* --- all three --- */

static int ci_instance_id(const struct ci_output *o, const struct ci_input *in,
			  char ret[CI_INSTANCE_ID_LEN + 1], struct phx_err *err)
{
	const char *seed = in->instance_seed ? in->instance_seed : "";
	char hex[CRYPTO_SHA256_HEX_LEN + 1];
	struct crypto_sha256 *h = crypto_sha256_new(err);
	int rc = -1;

	if (!h)
		return -1;
	/* NUL separators keep ("ab","c") and ("a","bc") apart */
	if (crypto_sha256_update(h, o->user_data, o->user_data_len + 1, err) < 0 ||
	    crypto_sha256_update(h, o->network_config, o->network_config_len + 1, err) < 0 ||
	    crypto_sha256_update(h, in->hostname, strlen(in->hostname) + 1, err) < 0 ||
	    crypto_sha256_update(h, seed, strlen(seed) + 1, err) < 0 ||
	    (o->vendor_data &&
	     crypto_sha256_update(h, o->vendor_data, o->vendor_data_len + 1, err) < 0) ||
	    crypto_sha256_final(h, hex, err) < 0)
		goto out;
	snprintf(ret, CI_INSTANCE_ID_LEN + 1, "iid-%.16s", hex);
	rc = 0;
out:
	crypto_sha256_free(h);
	return rc;
}

int ci_render(const struct ci_input *in, struct ci_output *ret_out, struct phx_err *err)
{
	struct ci_output o = CI_OUTPUT_INIT;

	if (ci_render_user_data(in, &o.user_data, &o.user_data_len, err) < 0 ||
	    ci_render_network_config_n(&in->network, in->more_networks, in->n_more_networks,
				       &o.network_config, &o.network_config_len, err) <
		    0 ||
	    ci_render_vendor_data(in, &o.vendor_data, &o.vendor_data_len, err) < 0 ||
	    ci_instance_id(&o, in, o.instance_id, err) < 0 ||
	    ci_render_meta_data(o.instance_id, in->hostname, &o.meta_data, &o.meta_data_len, err) <
		    0) {
		ci_output_release(&o);
		return -1;
	}
	*ret_out = o;
	return 0;
}

void ci_output_release(struct ci_output *out)
{
	if (!out)
		return;
	free(out->user_data);
	free(out->meta_data);
	free(out->network_config);
	free(out->vendor_data);
	*out = (struct ci_output)CI_OUTPUT_INIT;
}

/* --- native mode --- */

int ci_native_sshkeys_encode(const char *const *keys, size_t n, char **ret, struct phx_err *err)
{
	static const char hexd[] = "0123456789ABCDEF";
	struct buf b = BUF_INIT;
	char *s;

	if (n && !keys)
		return phx_err_set(err, PHX_E_INTERNAL, "sshkeys: %zu keys but no array", n);
	buf_init(&b, CI_OUT_MAX);
	for (size_t i = 0; i < n; i++) {
		if (!keys[i] || !*keys[i]) {
			buf_release(&b);
			return phx_err_set(err, PHX_E_INPUT, "ssh_keys[%zu]: empty key", i);
		}
		if (strpbrk(keys[i], "\r\n")) {
			buf_release(&b);
			return phx_err_set(err, PHX_E_INPUT,
					   "ssh_keys[%zu]: a key must be one line, got '%.40s...'",
					   i, keys[i]);
		}
		if (i && buf_puts(&b, "%0A", err) < 0)
			goto fail;
		for (const unsigned char *p = (const unsigned char *)keys[i]; *p; p++) {
			char enc[3] = {'%', hexd[*p >> 4], hexd[*p & 15]};
			bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
				    (*p >= '0' && *p <= '9') || strchr("-_.!~*'()", *p);

			if (buf_append(&b, keep ? (const char *)p : enc, keep ? 1 : 3, err) < 0)
				goto fail;
		}
	}
	s = buf_detach(&b);
	if (!s)
		s = strdup("");
	if (!s)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	*ret = s;
	return 0;
fail:
	buf_release(&b);
	return -1;
}

int ci_native_ipconfig(const char *ip_cidr, const char *gw, char **ret, struct phx_err *err)
{
	int fam = 0;
	char *s = NULL;
	int n;

	if (ip_cidr) {
		fam = ci_cidr_family(ip_cidr);
		if (!fam)
			return phx_err_set(err, PHX_E_INPUT,
					   "ip: expected CIDR like '10.0.0.5/24', got '%s'",
					   ip_cidr);
	}
	if (gw) {
		if (!ip_cidr)
			return phx_err_set(err, PHX_E_INPUT,
					   "gateway: '%s' needs a static address (ip)", gw);
		if (ci_addr_family(gw) != fam)
			return phx_err_set(err, PHX_E_INPUT,
					   "gateway: expected an address of the same family as "
					   "'%s', got '%s'",
					   ip_cidr, gw);
	}
	if (!ip_cidr)
		n = asprintf(&s, "ip=dhcp");
	else if (fam == AF_INET)
		n = gw ? asprintf(&s, "ip=%s,gw=%s", ip_cidr, gw) : asprintf(&s, "ip=%s", ip_cidr);
	else
		n = gw ? asprintf(&s, "ip6=%s,gw6=%s", ip_cidr, gw)
		       : asprintf(&s, "ip6=%s", ip_cidr);
	if (n < 0)
		return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	*ret = s;
	return 0;
}
