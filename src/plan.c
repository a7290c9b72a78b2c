/* plan: building and rendering plans (see plan.h). Pure: no I/O besides the caller's buffer.
 */
#include "plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_REDACTED "<redacted>"

static char *plan_vfmt(struct plan *p, const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) < 0) {
		p->oom = true;
		return NULL;
	}
	return s;
}

static char *plan_dup(struct plan *p, const char *s)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		p->oom = true;
	return d;
}

static void plan_undo_release(struct plan_undo *u)
{
	free(u->node);
	free(u->name);
	free(u->tag);
	free(u->target);
}

static void plan_action_free(struct plan_action *a)
{
	if (!a)
		return;
	free(a->object);
	free(a->summary);
	free(a->path);
	for (size_t i = 0; i < a->n_params; i++) {
		free(a->params[i].key);
		free(a->params[i].value);
	}
	free(a->params);
	for (size_t i = 0; i < a->n_changes; i++) {
		free(a->changes[i].key);
		free(a->changes[i].old);
		free(a->changes[i].new);
	}
	free(a->changes);
	free(a->file);
	free(a->filename);
	free(a->data);
	free(a->condition);
	plan_undo_release(&a->undo);
	free(a);
}

void plan_release(struct plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		plan_action_free(p->actions[i]);
	free(p->actions);
	for (size_t i = 0; i < p->n_notes; i++) {
		free(p->notes[i].object);
		free(p->notes[i].text);
	}
	free(p->notes);
	*p = (struct plan)PLAN_INIT;
}

int plan_check(const struct plan *p, struct phx_err *err)
{
	return p->oom ? phx_err_set(err, PHX_E_NOMEM, "out of memory building the plan") : 0;
}

bool plan_empty(const struct plan *p)
{
	return p->n == 0;
}

struct plan_action *plan_add(struct plan *p, enum plan_kind kind, enum plan_sym sym,
			     const char *object, const char *method, const char *path_fmt, ...)
{
	struct plan_action *a = calloc(1, sizeof(*a)), **grown;
	va_list ap;

	if (!a) {
		p->oom = true;
		return NULL;
	}
	a->kind = kind;
	a->sym = sym;
	a->method = method;
	a->object = plan_dup(p, object);
	va_start(ap, path_fmt);
	a->path = plan_vfmt(p, path_fmt, ap);
	va_end(ap);
	grown = realloc(p->actions, (p->n + 1) * sizeof(*grown));
	if (grown)
		p->actions = grown;
	if (!grown || p->oom) {
		p->oom = true;
		plan_action_free(a);
		return NULL;
	}
	p->actions[p->n++] = a;
	return a;
}

void plan_summary(struct plan *p, struct plan_action *a, const char *fmt, ...)
{
	va_list ap;

	if (!a)
		return;
	free(a->summary);
	va_start(ap, fmt);
	a->summary = plan_vfmt(p, fmt, ap);
	va_end(ap);
}

void plan_condition(struct plan *p, struct plan_action *a, const char *fmt, ...)
{
	va_list ap;

	if (!a)
		return;
	free(a->condition);
	va_start(ap, fmt);
	a->condition = plan_vfmt(p, fmt, ap);
	va_end(ap);
}

void plan_param(struct plan *p, struct plan_action *a, const char *key, const char *value,
		unsigned flags)
{
	struct plan_param *grown;

	if (!a || !value)
		return;
	grown = realloc(a->params, (a->n_params + 1) * sizeof(*grown));
	if (!grown) {
		p->oom = true;
		return;
	}
	a->params = grown;
	a->params[a->n_params++] = (struct plan_param){plan_dup(p, key), plan_dup(p, value), flags};
}

void plan_change(struct plan *p, struct plan_action *a, const char *key, const char *old,
		 const char *new, bool secret)
{
	struct plan_change *grown;

	if (!a)
		return;
	grown = realloc(a->changes, (a->n_changes + 1) * sizeof(*grown));
	if (!grown) {
		p->oom = true;
		return;
	}
	a->changes = grown;
	a->changes[a->n_changes++] =
		(struct plan_change){plan_dup(p, key), plan_dup(p, old), plan_dup(p, new), secret};
}

void plan_set(struct plan *p, struct plan_action *a, const char *key, const char *old,
	      const char *new, unsigned flags)
{
	plan_param(p, a, key, new, flags);
	plan_change(p, a, key, old, new, flags & PLAN_SECRET);
}

void plan_delete(struct plan *p, struct plan_action *a, const char *key, const char *old)
{
	char *list;

	if (!a)
		return;
	plan_change(p, a, key, old, NULL, false);
	for (size_t i = 0; i < a->n_params; i++) {
		if (strcmp(a->params[i].key, "delete"))
			continue;
		if (asprintf(&list, "%s,%s", a->params[i].value, key) < 0) {
			p->oom = true;
			return;
		}
		free(a->params[i].value);
		a->params[i].value = list;
		return;
	}
	plan_param(p, a, "delete", key, 0);
}

void plan_upload_file(struct plan *p, struct plan_action *a, const char *file, const char *filename)
{
	if (!a)
		return;
	a->file = plan_dup(p, file);
	a->filename = plan_dup(p, filename);
}

void plan_file_data(struct plan *p, struct plan_action *a, const char *data, size_t len)
{
	if (!a)
		return;
	a->data = malloc(len + 1);
	if (!a->data) {
		p->oom = true;
		return;
	}
	memcpy(a->data, data, len);
	a->data[len] = '\0';
	a->data_len = len;
}

void plan_undo_vm(struct plan *p, struct plan_action *a, const char *node, int vmid,
		  const char *name, const char *tag)
{
	if (!a)
		return;
	a->undo = (struct plan_undo){PLAN_UNDO_VM,	plan_dup(p, node), vmid,
				     plan_dup(p, name), plan_dup(p, tag),  NULL};
}

void plan_undo_ct(struct plan *p, struct plan_action *a, const char *node, int vmid,
		  const char *name, const char *tag)
{
	if (!a)
		return;
	a->undo = (struct plan_undo){PLAN_UNDO_CT,	plan_dup(p, node), vmid,
				     plan_dup(p, name), plan_dup(p, tag),  NULL};
}

void plan_undo_volume(struct plan *p, struct plan_action *a, const char *node, const char *volid)
{
	if (!a)
		return;
	a->undo = (struct plan_undo){PLAN_UNDO_VOLUME,	plan_dup(p, node), 0, NULL, NULL,
				     plan_dup(p, volid)};
}

void plan_undo_file(struct plan *p, struct plan_action *a, const char *path)
{
	if (!a)
		return;
	a->undo = (struct plan_undo){PLAN_UNDO_FILE, NULL, 0, NULL, NULL, plan_dup(p, path)};
}

void plan_note(struct plan *p, const char *object, const char *fmt, ...)
{
	struct plan_note *grown = realloc(p->notes, (p->n_notes + 1) * sizeof(*grown));
	va_list ap;

	if (!grown) {
		p->oom = true;
		return;
	}
	p->notes = grown;
	va_start(ap, fmt);
	p->notes[p->n_notes].text = plan_vfmt(p, fmt, ap);
	va_end(ap);
	p->notes[p->n_notes].object = plan_dup(p, object);
	p->n_notes++;
}

void plan_drop(struct plan *p, struct plan_action *a)
{
	for (size_t i = 0; a && i < p->n; i++) {
		if (p->actions[i] != a)
			continue;
		memmove(&p->actions[i], &p->actions[i + 1], (p->n - i - 1) * sizeof(*p->actions));
		p->n--;
		plan_action_free(a);
		return;
	}
}

char *plan_escape(struct plan *p, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(strlen(s) * 3 + 1), *o = out;

	if (!out) {
		p->oom = true;
		return NULL;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

int plan_param_fill(struct plan_action *a, const char *key, const char *value,
		    struct phx_err *err)
{
	for (size_t i = 0; i < a->n_params; i++) {
		char *v;

		if (strcmp(a->params[i].key, key) || !(a->params[i].flags & PLAN_PENDING))
			continue;
		if (!(v = strdup(value)))
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
		free(a->params[i].value);
		a->params[i].value = v;
		a->params[i].flags &= ~(unsigned)PLAN_PENDING;
		return 0;
	}
	return phx_err_set(err, PHX_E_INTERNAL, "%s: no pending parameter '%s'", a->summary, key);
}

const char *plan_param_get(const struct plan_action *a, const char *key)
{
	for (size_t i = 0; i < a->n_params; i++)
		if (!strcmp(a->params[i].key, key))
			return a->params[i].value;
	return NULL;
}

static const char *plan_undo_text(const struct plan_undo *u, char *buf, size_t len)
{
	switch (u->kind) {
	case PLAN_UNDO_VM:
		snprintf(buf, len, "destroy VM %d", u->vmid);
		return buf;
	case PLAN_UNDO_CT:
		snprintf(buf, len, "destroy container %d", u->vmid);
		return buf;
	case PLAN_UNDO_VOLUME:
		snprintf(buf, len, "delete volume '%s'", u->target);
		return buf;
	case PLAN_UNDO_FILE:
		snprintf(buf, len, "remove '%s'", u->target);
		return buf;
	case PLAN_UNDO_NONE:
		break;
	}
	return NULL;
}

static const char *plan_shown(const char *value, bool secret)
{
	return secret ? PLAN_REDACTED : value;
}

static int plan_render_action(const struct plan_action *a, struct buf *out, struct phx_err *err)
{
	char undo[600];

	if (buf_printf(out, err, "  %c %s\n", a->sym, a->summary ? a->summary : "") < 0)
		return -1;
	for (size_t i = 0; i < a->n_changes; i++) {
		const struct plan_change *c = &a->changes[i];
		int rc;

		if (!c->old)
			rc = buf_printf(out, err, "      + %s: %s\n", c->key,
					plan_shown(c->new, c->secret));
		else if (!c->new)
			rc = buf_printf(out, err, "      - %s: %s\n", c->key,
					plan_shown(c->old, c->secret));
		else
			rc = buf_printf(out, err, "      ~ %s: %s -> %s\n", c->key,
					plan_shown(c->old, c->secret),
					plan_shown(c->new, c->secret));
		if (rc < 0)
			return -1;
	}
	if (a->condition && buf_printf(out, err, "      only if %s\n", a->condition) < 0)
		return -1;
	if (a->method) {
		if (buf_printf(out, err, "      %s %s", a->method, a->path) < 0)
			return -1;
		for (size_t i = 0; i < a->n_params; i++)
			if (buf_printf(out, err, " %s=%s", a->params[i].key,
				       plan_shown(a->params[i].value,
						  a->params[i].flags & PLAN_SECRET)) < 0)
				return -1;
		if (a->kind == PLAN_UPLOAD &&
		    buf_printf(out, err, " filename=%s (file '%s')", a->filename, a->file) < 0)
			return -1;
		if (buf_puts(out, "\n", err) < 0)
			return -1;
	} else if (buf_printf(out, err, "      %s %s (%zu bytes)\n",
			      a->kind == PLAN_WRITE_FILE ? "write" : "remove", a->path,
			      a->data_len) < 0) {
		return -1;
	}
	if (plan_undo_text(&a->undo, undo, sizeof(undo)) &&
	    buf_printf(out, err, "      undo on failure: %s\n", undo) < 0)
		return -1;
	return 0;
}

int plan_render_text(const struct plan *p, struct buf *out, struct phx_err *err)
{
	const char *object = NULL;

	for (size_t i = 0; i < p->n; i++) {
		const struct plan_action *a = p->actions[i];

		if ((!object || strcmp(object, a->object)) &&
		    buf_printf(out, err, "%s:\n", a->object) < 0)
			return -1;
		object = a->object;
		if (plan_render_action(a, out, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < p->n_notes; i++)
		if (buf_printf(out, err, "%s: = %s\n", p->notes[i].object, p->notes[i].text) < 0)
			return -1;
	return 0;
}

json_t *plan_json_document(const char *command, struct phx_err *err)
{
	json_t *doc = json_pack("{si ss s[] s[] si}", "plan_version", PLAN_JSON_VERSION, "command",
				command, "actions", "notes", "changes", 0);

	if (!doc)
		phx_err_set(err, PHX_E_NOMEM, "out of memory");
	return doc;
}

static json_t *plan_action_json(const struct plan_action *a)
{
	static const char *const kinds[] = {"request", "upload", "write_file", "remove_file"};
	char sym[2] = {(char)a->sym, 0}, undo[600];
	json_t *o = json_object(), *params = json_object(), *changes = json_array(),
	       *pending = json_array();

	if (!o || !params || !changes || !pending) {
		json_decref(o);
		json_decref(params);
		json_decref(changes);
		json_decref(pending);
		return NULL;
	}
	for (size_t i = 0; i < a->n_params; i++) {
		const struct plan_param *pp = &a->params[i];

		json_object_set_new(params, pp->key,
				    json_string(plan_shown(pp->value, pp->flags & PLAN_SECRET)));
		if (pp->flags & PLAN_PENDING)
			json_array_append_new(pending, json_string(pp->key));
	}
	for (size_t i = 0; i < a->n_changes; i++) {
		const struct plan_change *c = &a->changes[i];

		json_array_append_new(
			changes, json_pack("{ss ss? ss?}", "key", c->key, "old",
					   c->old ? plan_shown(c->old, c->secret) : NULL, "new",
					   c->new ? plan_shown(c->new, c->secret) : NULL));
	}
	json_object_set_new(o, "object", json_string(a->object));
	json_object_set_new(o, "action", json_string(sym));
	json_object_set_new(o, "kind", json_string(kinds[a->kind]));
	json_object_set_new(o, "summary", json_string(a->summary ? a->summary : ""));
	json_object_set_new(o, "method", a->method ? json_string(a->method) : json_null());
	json_object_set_new(o, "path", json_string(a->path));
	json_object_set_new(o, "params", params);
	json_object_set_new(o, "pending", pending);
	if (a->kind == PLAN_UPLOAD)
		json_object_set_new(o, "upload",
				    json_pack("{ss ss}", "file", a->file, "filename", a->filename));
	json_object_set_new(o, "changes", changes);
	json_object_set_new(o, "condition", a->condition ? json_string(a->condition) : json_null());
	json_object_set_new(o, "undo",
			    plan_undo_text(&a->undo, undo, sizeof(undo)) ? json_string(undo)
									 : json_null());
	json_object_set_new(o, "best_effort", json_boolean(a->flags & PLAN_BEST_EFFORT));
	return o;
}

int plan_json_append(const struct plan *p, json_t *doc, struct phx_err *err)
{
	json_t *actions = json_object_get(doc, "actions"), *notes = json_object_get(doc, "notes");

	for (size_t i = 0; i < p->n; i++) {
		json_t *o = plan_action_json(p->actions[i]);

		if (!o || json_array_append_new(actions, o) < 0)
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < p->n_notes; i++)
		if (json_array_append_new(notes, json_pack("{ss ss}", "object", p->notes[i].object,
							   "text", p->notes[i].text)) < 0)
			return phx_err_set(err, PHX_E_NOMEM, "out of memory");
	json_object_set_new(doc, "changes", json_integer((json_int_t)json_array_size(actions)));
	return 0;
}
