/* `refit status`: managed containers, their digest, strategy, last change and pending update. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "refit/journal-record.h"
#include "refit/journal.h"

static int run_status(struct refit_config *cfg)
{
	struct check_result res;
	json_t *hist, *out;
	int code = check_pass(cfg, &res);

	if (code)
		return code;
	out = json_array();
	hist = journal_history(cfg->state_dir, NULL);
	for (size_t i = 0; i < res.n; i++) {
		const struct check_entry *c = &res.v[i];
		json_t *last = jr_last_change(hist, c->name), *o;

		last = last ? journal_public(last) : NULL;
		o = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:o, s:o, s:s?}", "name", c->name, "id", c->id, "image",
			      c->image, "digest", c->current_digest, "strategy", c->strategy, "last_update",
			      last ? last : json_null(), "pending_update",
			      c->update_available < 0 ? json_null() : json_boolean(c->update_available), "error", c->error);
		if (o)
			json_object_set_new(o, "status", json_string(entry_status_to_string(c->status)));
		if (o)
			json_array_append_new(out, o);
	}
	if (opts.json) {
		print_json("containers", out);
	} else {
		size_t i;
		json_t *o;

		printf("%-24s  %-12s  %-10s  %-8s  %-20s  %s\n", "NAME", "DIGEST", "STRATEGY", "PENDING", "LAST CHANGE", "IMAGE");
		json_array_foreach(out, i, o) {
			char d[24];
			json_t *last = json_object_get(o, "last_update"), *p = json_object_get(o, "pending_update");
			char when[64];

			snprintf(when, sizeof(when), "%s %s",
				 json_string_value(json_object_get(last, "finished")) ? json_string_value(json_object_get(last, "finished")) : "-",
				 json_string_value(json_object_get(last, "outcome")) ? json_string_value(json_object_get(last, "outcome")) : "");
			printf("%-24s  %-12s  %-10s  %-8s  %-20s  %s\n", json_string_value(json_object_get(o, "name")),
			       registry_digest_short(json_string_value(json_object_get(o, "digest")), d),
			       json_string_value(json_object_get(o, "strategy")) ? json_string_value(json_object_get(o, "strategy")) : "-",
			       json_is_null(p)			      ? "?" :
			       !json_is_true(p)			      ? "no" :
			       strcmp(json_string_value(json_object_get(o, "status")), "held") == 0 ? "held" :
			       strcmp(json_string_value(json_object_get(o, "status")), "cooldown") == 0 ? "cooldown" : "yes",
			       when,
			       json_string_value(json_object_get(o, "image")) ? json_string_value(json_object_get(o, "image")) : "-");
		}
	}
	json_decref(hist);
	json_decref(out);
	code = check_exit_code(&res);
	check_result_free(&res);
	return code;
}

const struct command cmd_status = {
	.name = "status",
	.run = run_status,
	.takes_names = true,
	.options = OPT_JSON,
	.usage = "refit status [--json] [NAME...]",
	.help = "The managed containers: image, digest, strategy, last change and whether an\n"
		"update is pending (asks the registries, like check).\n",
};
