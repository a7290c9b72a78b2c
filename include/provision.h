/* provision: the parts of --provision-template that live beside cmd_provision.c. Today that is
 * the boot proof behind --validate: clone the fresh template into a throwaway VM, give it a
 * minimal NoCloud seed, start it, wait for the guest agent, run `cloud-init status --wait` and
 * check sshd through the agent, then remove the throwaway VM and its seed whatever happened;
 * for a container template, start a throwaway clone and wait for an address on its eth0. */
#ifndef PHX_PROVISION_H
#define PHX_PROVISION_H

#include "err.h"
#include "journal.h"
#include "pve.h"

/* Keys of a template's build record (record.h) that other commands read. */
#define PROV_REC_SOURCE "source"
#define PROV_REC_SHA256 "sha256"
#define PROV_REC_BUILT "built"
#define PROV_REC_PACKAGES "packages"
#define PROV_REC_CUSTOM_SHA256 "customized-sha256"
#define PROV_REC_ARCHIVE "archive" /* a container template's vztmpl volume */

struct cfg_template;

/* A template version's build record (record.h): template, name, source, sha256 and
 * customized-sha256 (each left out when NULL), built now, build date and number (from a
 * series version's name), builder, os, type, packages ("" or NULL: none), archive (a
 * container template's vztmpl volume; NULL: none). --list-templates, rebuild_on_change,
 * --diff and --publish read it. Caller frees; NULL when out of memory. */
char *prov_description(const struct cfg_template *t, const char *name, const char *source,
		       const char *sha256, const char *custom_sha256, const char *packages,
		       const char *archive);
/* A version's tags (docs/lifecycle.md: phoenix, phx-<template>, builder-phoenix,
 * built-YYYYMMDD, build-NNN, os-, type-, then the template's own), ';'-joined into ret. */
int prov_tags(const struct cfg_template *t, const char *name, char *ret, size_t len,
	      struct phx_err *err);

struct plan;

/* What a container template build (kind "lxc") sends, once its archive is ready (or, in a
 * dry run, before: custom_sha NULL makes the values that carry its hash pending). */
struct prov_ct_input {
	const struct cfg_template *t;
	const char *node;
	unsigned long vmid;
	const char *name;		     /* the version's (or the template's) name */
	const char *source_sha, *custom_sha; /* NULL: not known yet */
	const char *archive_path;	     /* the customized .tar.zst, or NULL */
	const char *tags;
	const char *packages; /* the record's `packages` value; "": none; NULL: not known yet */
};

/* "<container.template_storage>:vztmpl/<name>.tar.zst" into ret: where the version's
 * archive lives (the build record's `archive:` line; --prune deletes it). */
int prov_ct_archive_volid(const struct cfg_template *t, const char *name, char *ret, size_t len,
			  struct phx_err *err);
/* The pure planner: upload the archive (vztmpl), create the container from it (rootfs
 * storage:size, unprivileged, nesting, net0 by DHCP on the bridge, cores, memory, swap,
 * tags, the build record), convert it to a template. Undo: the archive and the container. */
int prov_ct_plan_build(const struct prov_ct_input *in, struct plan *p, struct phx_err *err);

struct prov_validate_opts {
	const char *node; /* borrowed */
	int template_vmid;
	const char *iso_storage; /* borrowed; where the seed ISO goes (content=iso) */
	long task_timeout_s;
	long agent_timeout_s; /* agent answer, and again for cloud-init to finish */
	struct journal *journal; /* borrowed; the run's (session.h), NULL in tests */
	const char *tmp_dir;	 /* borrowed; the run's private temp dir, NULL: $TMPDIR */
	const char *seed_drive;	 /* the seed's drive key (hw_seed_drive), NULL: "ide2" */
};

/* Runs the boot proof. 0 when the guest booted, cloud-init reached `done` and sshd is active;
 * -1 with the reason otherwise (PHX_E_TIMEOUT when the agent never answered, PHX_E_GUEST
 * with the guest command's output). The throwaway VM and seed are removed in both cases (a
 * failed removal is a warning). */
int prov_validate(struct pve_client *c, const struct prov_validate_opts *o, struct phx_err *err);
/* The boot proof of a container template (no agent, no exec API in pve-container): clone it
 * (linked, else full), start it, wait up to agent_timeout_s for a global IPv4 address on eth0
 * in GET .../interfaces while it stays running. iso_storage and seed_drive are not used.
 * PHX_E_TIMEOUT when no address came, PHX_E_GUEST when the container stopped. The test
 * container is stopped and destroyed in both cases (a failed removal is a warning). */
int prov_ct_validate(struct pve_client *c, const struct prov_validate_opts *o,
		     struct phx_err *err);

#endif
