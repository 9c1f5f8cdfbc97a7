/* alias: the replacement takes a new name; the old name stays resolvable as a network alias. */
#include <stdio.h>
#include <string.h>

#include "refit/journal-record.h"
#include "swap-internal.h"

/* Take every step of the alias swap. */
static int alias_run(struct swap *s, struct refit_err *e)
{
	const char *to = swap_get(s, JR_NEW_NAME), *new_id;

	if (!to) {
		err_set(e, ERR_FAILED, "alias strategy: the record has no new name");
		return 1; /* nothing changed yet */
	}
	if (swap_step(s, "creating", e) < 0)
		return 1;
	if (swap_create(s, to, s->name, true, e) < 0)
		return swap_undo(s, e);
	new_id = swap_get(s, JR_NEW_ID);
	if (swap_step(s, "starting", e) < 0 || swap_start(s, new_id, e) < 0 || swap_step(s, "health", e) < 0 ||
	    health_wait(s->en, new_id, &s->health, e) < 0 || swap_step(s, "joining", e) < 0 || swap_join(s, e) < 0 ||
	    swap_step(s, "cutover", e) < 0)
		return swap_undo(s, e);
	/* Past the gate: the old one leaves DNS (its name lives on as the new one's alias), then goes. */
	{
		struct refit_err be = { 0 };

		if (swap_disconnect_old(s, &be) < 0 || swap_stop(s, s->old_id, &be) < 0)
			err_clear(&be); /* best effort: it is removed by force next */
	}
	return swap_complete(s, to, e) < 0 ? -1 : 0;
}

const struct strategy_ops strategy_alias = {
	.name = "alias",
	.run = alias_run,
	.commit_step = "cutover",
	.takes_new_name = true,
};
