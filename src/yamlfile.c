/* The YAML loader every file parser of refit shares. */
#include "refit/yamlfile.h"

int yfile_load(const char *buf, size_t len, size_t max, const char *name, yaml_document_t *doc,
	       struct refit_err *e)
{
	yaml_parser_t parser;
	int rc = 0;

	if (len > max)
		return err_set(e, ERR_USAGE, "%s: larger than %zu bytes", name, max);
	if (!yaml_parser_initialize(&parser))
		return err_set(e, ERR_FAILED, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, doc))
		rc = err_set(e, ERR_USAGE, "%s:%lu: %s", name, (unsigned long)parser.problem_mark.line + 1,
			     parser.problem ? parser.problem : "invalid YAML");
	yaml_parser_delete(&parser); /* the document lives on without it */
	return rc;
}

unsigned long yfile_line(const yaml_node_t *n)
{
	return n ? (unsigned long)n->start_mark.line + 1 : 0;
}
