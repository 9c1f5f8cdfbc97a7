/*
 * handover: refit's own container (refit/handover.h). The old one keeps
 * running under an aside name while its replacement, created beside it,
 * takes its name, starts and stands by; the swap is done once the
 * replacement says it is ready. The old container is removed by the
 * replacement when it takes the lock, after the pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "refit/base.h"
#include "refit/engine.h"
#include "refit/fsutil.h"
#include "refit/handover.h"
#include "refit/journal-record.h"
#include "swap-internal.h"

#define READY_POLL_MS 250

/* Does STATE_DIR's ready mark name ID? */
static bool ready_says(const char *state_dir, const char *id)
{
	char path[4200], *buf = NULL;
	size_t len = 0;
	struct refit_err e = { 0 };
	bool yes;

	if (path_fmt(path, sizeof(path), "%s/%s", state_dir, HANDOVER_READY) < 0 || access(path, F_OK) != 0 ||
	    fs_read_file(path, 80, &buf, &len, &e) < 0)
		return false;
	buf[strcspn(buf, "\n")] = '\0';
	yes = strcmp(buf, id) == 0;
	free(buf);
	return yes;
}

/* Wait for the replacement NEW_ID's ready mark (the health gate of a handover): 0, or -1 with E. */
static int wait_ready(struct swap *s, const char *new_id, struct refit_err *e)
{
	long timeout = s->health.timeout > 0 ? s->health.timeout : 60;
	struct timespec ts = { 0, READY_POLL_MS * 1000000L };

	for (long n = 0; n * READY_POLL_MS < timeout * 1000; n++) {
		if (ready_says(s->cfg->state_dir, new_id))
			return 0;
		if (n % (1000 / READY_POLL_MS) == 0) {
			json_t *ins = NULL, *st;
			int f = engine_container_inspect(s->en, new_id, &ins, e);

			st = json_object_get(ins, "State");
			if (f == 1 && !json_is_true(json_object_get(st, "Running"))) {
				err_set(e, ERR_FAILED, "the replacement exited (code %lld) before it was ready",
					(long long)json_integer_value(json_object_get(st, "ExitCode")));
				json_decref(ins);
				return -1;
			}
			json_decref(ins);
			if (f <= 0) {
				if (f == 0)
					err_set(e, ERR_FAILED, "the replacement is gone");
				return -1;
			}
		}
		nanosleep(&ts, NULL);
	}
	return err_set(e, ERR_FAILED, "the replacement was not ready within %ld s", timeout);
}

static int handover_undo(struct swap *s, struct refit_err *e)
{
	struct refit_err he = { 0 };

	handover_store(s->cfg->state_dir, NULL, &he);
	return swap_undo(s, e);
}

static int handover_run(struct swap *s, struct refit_err *e)
{
	const char *new_id;
	char aside[300], temp[300];
	json_t *h;
	int rc;

	if (swap_aside_names(s, aside, temp, e) < 0)
		return 1; /* nothing changed yet */
	if (swap_create(s, temp, NULL, false, e) < 0)
		return handover_undo(s, e);
	new_id = swap_get(s, JR_NEW_ID);
	/* No downtime: the old one runs on under its aside name until the replacement removes it. */
	if (swap_step(s, "renaming", e) < 0 || swap_rename(s, s->old_id, aside, e) < 0 ||
	    swap_rename(s, new_id, s->name, e) < 0)
		return handover_undo(s, e);
	h = json_pack("{s:s, s:s, s:s, s:s, s:s}", "from", s->old_id, "to", new_id, "name", s->name, "image",
		      swap_get(s, JR_IMAGE) ? swap_get(s, JR_IMAGE) : "", "digest",
		      swap_get(s, JR_NEW_DIGEST) ? swap_get(s, JR_NEW_DIGEST) : "");
	rc = h ? handover_store(s->cfg->state_dir, h, e) : err_set(e, ERR_FAILED, "out of memory");
	json_decref(h);
	if (rc < 0 || swap_step(s, "starting", e) < 0 || swap_start(s, new_id, e) < 0 ||
	    swap_step(s, "standing-by", e) < 0 || wait_ready(s, new_id, e) < 0)
		return handover_undo(s, e);
	return 0;
}

const struct strategy_ops strategy_handover = {
	.name = "handover",
	.run = handover_run,
	.commit_step = "handed-over", /* never journaled: an interrupted handover is decided by who recovers it */
	.downtime = false,
	.internal = true,
};
