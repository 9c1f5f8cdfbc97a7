/* alias: the replacement takes a new name; the old name stays resolvable as a network alias. */
#include <stdio.h>
#include <string.h>

#include "strategy-internal.h"

/* A Docker container name: [a-zA-Z0-9][a-zA-Z0-9_.-]+, bounded. */
static bool valid_name(const char *n)
{
	size_t len = n ? strlen(n) : 0;

	if (len < 2 || len > 128 || !((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= 'A' && n[0] <= 'Z') ||
				      (n[0] >= '0' && n[0] <= '9')))
		return false;
	return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == len;
}

/* Take every step of the alias swap. */
static int alias_run(struct swap *s, struct refit_err *e)
{
	const char *to = swap_get(s, "new_name"), *new_id;
	struct refit_err ue = { 0 };

	if (!valid_name(to) || strcmp(to, s->name) == 0) {
		err_set(e, ERR_FAILED, "alias strategy: refit.rename-to must name a different container ([a-zA-Z0-9_.-]), got \"%.60s\"",
			to ? to : "");
		return 1;
	}
	if (swap_step(s, "creating", e) < 0)
		return 1;
	if (swap_create(s, to, s->name, true, e) < 0)
		goto undo;
	new_id = swap_get(s, "new_id");
	if (swap_step(s, "starting", e) < 0 || swap_start(s, new_id, e) < 0 || swap_step(s, "health", e) < 0 ||
	    health_wait(s->en, new_id, &s->health, e) < 0 || swap_step(s, "joining", e) < 0 || swap_join(s, e) < 0 ||
	    swap_step(s, "cutover", e) < 0)
		goto undo;
	/* Past the gate: the old one leaves DNS (its name lives on as the new one's alias), then goes. */
	{
		struct refit_err be = { 0 };

		if (swap_disconnect_old(s, &be) < 0 || swap_stop(s, s->old_id, &be) < 0)
			err_clear(&be); /* best effort: it is removed by force next */
	}
	return swap_complete(s, to, e) < 0 ? -1 : 0;
undo:
	if (swap_restore_old(s, &ue) < 0) {
		err_prefix(e, "restoring the old container failed too (%s) after: ", ue.msg);
		return -1;
	}
	return 1;
}

/* Continue an interrupted alias swap. */
static int alias_recover(struct swap *s, struct refit_err *e)
{
	const char *step = swap_get(s, "step");

	if (step && strcmp(step, "cutover") == 0)
		return swap_complete(s, swap_get(s, "new_name"), e) < 0 ? -1 : 0;
	return swap_restore_old(s, e) < 0 ? -1 : 1;
}

const struct strategy_ops strategy_alias = {
	.name = "alias",
	.run = alias_run,
	.recover = alias_recover,
};
