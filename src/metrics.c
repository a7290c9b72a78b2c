/* metrics: Prometheus text-format output of a run (see metrics.h). */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"

static const char *const met_phase_names[MET_PHASES] = {"download", "customize", "upload",
							 "create", "template"};

/* A label value: \ " and newline escaped (text format, "label_value"). */
static int met_label(struct buf *out, const char *v, struct phx_err *err)
{
	for (const char *p = v ? v : ""; *p; p++) {
		const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;

		if (esc ? buf_printf(out, err, "%s", esc) < 0 : buf_printf(out, err, "%c", *p) < 0)
			return -1;
	}
	return 0;
}

static int met_head(struct buf *out, const char *name, const char *type, const char *help,
		    struct phx_err *err)
{
	return buf_printf(out, err, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{template="..",node=".."[,extra]} value */
static int met_sample(struct buf *out, const char *name, const struct met_template *t,
		      const char *extra_key, const char *extra_value, double value,
		      struct phx_err *err)
{
	if (buf_printf(out, err, "%s{template=\"", name) < 0 || met_label(out, t->template, err) < 0 ||
	    buf_printf(out, err, "\",node=\"") < 0 || met_label(out, t->node, err) < 0)
		return -1;
	if (extra_key && (buf_printf(out, err, "\",%s=\"", extra_key) < 0 ||
			  met_label(out, extra_value, err) < 0))
		return -1;
	return buf_printf(out, err, "\"} %.17g\n", value);
}

int met_render(const struct met_run *run, struct buf *out, struct phx_err *err)
{
	const struct met_template *t;
	size_t i;

	if (met_head(out, "phoenix_provision_last_run_timestamp_seconds", "gauge",
		     "When the last --provision-template run ended.", err) < 0 ||
	    buf_printf(out, err, "phoenix_provision_last_run_timestamp_seconds %.17g\n",
		       run->finished) < 0 ||
	    met_head(out, "phoenix_provision_last_success_timestamp_seconds", "gauge",
		     "When the last --provision-template run that succeeded on every template "
		     "and node ended (0: never).",
		     err) < 0 ||
	    buf_printf(out, err, "phoenix_provision_last_success_timestamp_seconds %.17g\n",
		       run->success ? run->finished : run->last_success) < 0 ||
	    met_head(out, "phoenix_provision_success", "gauge",
		     "1 when the last run succeeded on every template and node.", err) < 0 ||
	    buf_printf(out, err, "phoenix_provision_success %d\n", run->success ? 1 : 0) < 0 ||
	    met_head(out, "phoenix_provision_duration_seconds", "gauge",
		     "Wall time of the last run.", err) < 0 ||
	    buf_printf(out, err, "phoenix_provision_duration_seconds %.3f\n",
		       run->finished - run->started) < 0)
		return -1;
	for (int flag = 0; flag < 2; flag++) {
		const char *name = flag ? "phoenix_template_changed" : "phoenix_template_ok";

		if (met_head(out, name, "gauge",
			     flag ? "1 when the last run built a new template (or version) on the "
				    "node."
				  : "1 when the template is built and current on the node after the "
				    "last run.",
			     err) < 0)
			return -1;
		for (i = 0, t = run->templates; i < run->n; i++, t++)
			if (met_sample(out, name, t, NULL, NULL, flag ? t->changed : t->ok, err) < 0)
				return -1;
	}
	if (met_head(out, "phoenix_template_phase_seconds", "gauge",
		     "Time the last run spent in each phase of the template's build on the node.",
		     err) < 0)
		return -1;
	for (i = 0, t = run->templates; i < run->n; i++, t++)
		for (size_t k = 0; k < MET_PHASES; k++)
			if (met_sample(out, "phoenix_template_phase_seconds", t, "phase",
				       met_phase_names[k], t->phase_s[k], err) < 0)
				return -1;
	if (met_head(out, "phoenix_template_info", "gauge",
		     "The template the node has after the last run: VMID, version and source "
		     "image sha256 as labels.",
		     err) < 0)
		return -1;
	for (i = 0, t = run->templates; i < run->n; i++, t++) {
		char vmid[24];

		if (!t->ok || !t->vmid)
			continue;
		snprintf(vmid, sizeof(vmid), "%lu", t->vmid);
		if (buf_printf(out, err, "phoenix_template_info{template=\"") < 0 ||
		    met_label(out, t->template, err) < 0 ||
		    buf_printf(out, err, "\",node=\"") < 0 || met_label(out, t->node, err) < 0 ||
		    buf_printf(out, err, "\",vmid=\"%s\",version=\"", vmid) < 0 ||
		    met_label(out, t->version, err) < 0 ||
		    buf_printf(out, err, "\",sha256=\"") < 0 || met_label(out, t->sha256, err) < 0 ||
		    buf_printf(out, err, "\"} 1\n") < 0)
			return -1;
	}
	return 0;
}

double met_read_last_success(const char *path)
{
	static const char key[] = "\nphoenix_provision_last_success_timestamp_seconds ";
	struct buf b = BUF_INIT;
	const char *p;
	double v = 0;

	if (fs_read_file(path, &b, NULL) == 0 && b.data && (p = strstr(b.data, key)))
		v = strtod(p + strlen(key), NULL);
	buf_release(&b);
	return v > 0 ? v : 0;
}

int met_write(const char *path, const struct met_run *run, struct phx_err *err)
{
	struct buf out = BUF_INIT;
	int rc = met_render(run, &out, err);

	if (rc == 0)
		rc = fs_write_atomic(path, out.data, out.len, 0644, err);
	if (rc < 0)
		phx_err_wrap(err, "write the metrics file '%s'", path);
	buf_release(&out);
	return rc;
}
