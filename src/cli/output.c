/* Tables and JSON: how the commands print what they did. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "refit/registry.h"

/* Print a check result as a table. */
void print_check_table(const struct check_result *r)
{
	int wn = 4, ws = 6, wi = 5;

	for (size_t i = 0; i < r->n; i++) {
		const struct check_entry *c = &r->v[i];
		int n = (int)strlen(c->name), s = (int)strlen(entry_status_to_string(c->status)), im = c->image ? (int)strlen(c->image) : 1;

		wn = n > wn ? n : wn;
		ws = s > ws ? s : ws;
		wi = im > wi ? im : wi;
	}
	printf("%-*s  %-*s  %-*s  %-12s  %s\n", wn, "NAME", ws, "STATUS", wi, "IMAGE", "CURRENT", "LATEST");
	for (size_t i = 0; i < r->n; i++) {
		const struct check_entry *c = &r->v[i];
		char a[24], b[24];

		printf("%-*s  %-*s  %-*s  %-12s  %s\n", wn, c->name, ws, entry_status_to_string(c->status), wi, c->image ? c->image : "-",
		       registry_digest_short(c->current_digest, a), registry_digest_short(c->latest_digest, b));
		if (c->error)
			printf("%-*s  error: %s\n", wn, "", c->error);
		if (c->target_image)
			printf("%-*s  moves to tag %s (%s)\n", wn, "", c->target_tag, c->target_image);
		else if (c->target_tag)
			printf("%-*s  stays on tag %s (no higher tag to move to)\n", wn, "", c->target_tag);
	}
	if (r->n == 0)
		printf("(no managed containers)\n");
}

/* Print {"KEY": VALUE} as indented JSON; VALUE is borrowed. */
void print_json(const char *key, json_t *value)
{
	json_t *root = json_pack("{s:O}", key, value);
	char *txt = root ? json_dumps(root, JSON_INDENT(2)) : NULL;

	if (txt)
		printf("%s\n", txt);
	free(txt);
	json_decref(root);
}

/* Print a pass's result as JSON or as a table. */
void print_result(const struct check_result *res)
{
	if (opts.json) {
		json_t *j = check_result_json(res);
		char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;

		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(j);
	} else {
		print_check_table(res);
	}
}

/* Print a migration's result ({"migrations":[...]}) as JSON or as a table. */
void print_migrations(json_t *result, bool dry_run)
{
	size_t i;
	json_t *m;

	if (opts.json) {
		char *txt = json_dumps(result, JSON_INDENT(2));

		if (txt)
			printf("%s\n", txt);
		free(txt);
		return;
	}
	printf("%-24s  %-24s  %-11s  %s\n", "FROM", "TO", "STATUS", "IMAGE");
	json_array_foreach(json_object_get(result, "migrations"), i, m) {
		const char *err = json_string_value(json_object_get(m, "error"));
		const char *bk = json_string_value(json_object_get(m, "backup"));

		printf("%-24s  %-24s  %-11s  %s%s\n", json_string_value(json_object_get(m, "from")),
		       json_string_value(json_object_get(m, "to")), json_string_value(json_object_get(m, "status")),
		       json_string_value(json_object_get(m, "image")) ? json_string_value(json_object_get(m, "image")) : "-",
		       json_is_true(json_object_get(m, "preserve_data")) && dry_run ? " (volumes backed up first)" : "");
		if (bk)
			printf("%26s backup: %s\n", "", bk);
		if (err)
			printf("%26s error: %s\n", "", err);
	}
	if (dry_run)
		printf("(dry run: nothing was changed)\n");
}
