/*
 * recreate: create the new one under a temporary name beside the running
 * old one, stop the old one, set it aside, give the new one the name, start
 * it, gate, remove the old one.
 */
#include <stdio.h>
#include <string.h>

#include "refit/journal-record.h"
#include "swap-internal.h"

/* Take every step of the recreate swap. */
static int recreate_run(struct swap *s, struct refit_err *e)
{
	const char *new_id;
	char aside[300], temp[300];

	if (swap_aside_names(s, aside, temp, e) < 0)
		return 1; /* nothing changed yet */
	/*
	 * Created while the old one still runs: the name is the temporary one,
	 * and published ports, addresses and devices are only taken at start.
	 * The old one's anonymous volumes are mounted by name (engine-spec.c).
	 */
	if (swap_create(s, temp, NULL, false, e) < 0)
		return swap_undo(s, e);
	new_id = swap_get(s, JR_NEW_ID);
	/* The downtime: from the stop to the start, two renames between. */
	if (swap_step(s, "stopping", e) < 0 || (s->was_running && swap_stop(s, s->old_id, e) < 0) ||
	    swap_step(s, "renaming", e) < 0 || swap_rename(s, s->old_id, aside, e) < 0 ||
	    swap_rename(s, new_id, s->name, e) < 0)
		return swap_undo(s, e);
	if (!s->was_running && !s->cfg->revive_stopped) {
		/* A stopped container is replaced by a stopped one: nothing to gate. */
		if (swap_step(s, "removing-old", e) < 0)
			return swap_undo(s, e);
		return swap_remove(s, s->old_id, false, e) < 0 ? -1 : 0;
	}
	if (swap_step(s, "starting", e) < 0 || swap_start(s, new_id, e) < 0 || swap_step(s, "health", e) < 0 ||
	    health_wait(s->en, new_id, &s->health, e) < 0)
		return swap_undo(s, e);
	if (swap_step(s, "removing-old", e) < 0)
		return swap_undo(s, e);
	/*
	 * Past the gate: finishing never goes back to the old one. The new one
	 * has its name and the gate has just seen it run, so only the old one
	 * is removed (a recovery from this step finishes with swap_complete).
	 */
	return swap_remove(s, s->old_id, false, e) < 0 ? -1 : 0;
}

const struct strategy_ops strategy_recreate = {
	.name = "recreate",
	.run = recreate_run,
	.commit_step = "removing-old",
	.downtime = true,
};
