/* blue-green: start the new one beside the old one, gate, take the old one out of DNS, then away. */
#include <stdio.h>
#include <string.h>

#include "refit/journal-record.h"
#include "swap-internal.h"

/* Take every step of the blue-green swap. */
static int blue_green_run(struct swap *s, struct refit_err *e)
{
	const char *new_id;
	char temp[300];

	snprintf(temp, sizeof(temp), "%s-refit-new-%.8s", s->name, swap_get(s, JR_ID));
	if (swap_note(s, JR_TEMP_NAME, temp, e) < 0 || swap_step(s, "creating", e) < 0)
		return 1;
	if (swap_create(s, temp, s->name, true, e) < 0)
		return swap_undo(s, e);
	new_id = swap_get(s, JR_NEW_ID);
	if (swap_step(s, "starting", e) < 0 || swap_start(s, new_id, e) < 0 || swap_step(s, "health", e) < 0 ||
	    health_wait(s->en, new_id, &s->health, e) < 0)
		return swap_undo(s, e);
	/* Healthy: now it answers to the shared names beside the old one. */
	if (swap_step(s, "joining", e) < 0 || swap_join(s, e) < 0 || swap_step(s, "cutover", e) < 0)
		return swap_undo(s, e);
	/*
	 * Past the gate: the old one leaves DNS, drains and stops (best effort:
	 * it is removed by force next), and the new one takes the name.
	 */
	{
		struct refit_err be = { 0 };

		if (swap_disconnect_old(s, &be) < 0 || swap_stop(s, s->old_id, &be) < 0)
			err_clear(&be);
	}
	return swap_complete(s, s->name, e) < 0 ? -1 : 0;
}

const struct strategy_ops strategy_blue_green = {
	.name = "blue-green",
	.run = blue_green_run,
	.commit_step = "cutover",
};
