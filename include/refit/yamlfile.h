/* YAML files (configuration, migration plans, fleet hosts): one bounded loader and its node helpers. */
#ifndef REFIT_YAMLFILE_H
#define REFIT_YAMLFILE_H

#include <stddef.h>
#include <yaml.h>

#include "refit/error.h"

/*
 * Load BUF (LEN bytes, at most MAX) as one YAML document into *DOC, which
 * the caller then frees with yaml_document_delete(). NAME names the input
 * in messages ("refit.yml:3: ..."). 0, or -1 with E: ERR_USAGE for what
 * the text says, ERR_FAILED when out of memory.
 */
int yfile_load(const char *buf, size_t len, size_t max, const char *name, yaml_document_t *doc,
	       struct refit_err *e);

/* The 1-based line node N starts on; 0 for NULL. */
unsigned long yfile_line(const yaml_node_t *n);

#endif
