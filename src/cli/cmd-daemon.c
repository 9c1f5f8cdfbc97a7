/* `refit daemon`: the service. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "refit/daemon.h"

static int run_daemon(struct refit_config *cfg)
{
	return daemon_run(cfg, load_config);
}

const struct command cmd_daemon = {
	.name = "daemon",
	.run = run_daemon,
	.takes_names = false,
	.options = 0,
	.usage = "refit daemon",
	.help = "Run as a service: finish any swap an earlier run left half done, then run an\n"
		"update pass (as refit update) every poll_interval, or on the cron schedule, and\n"
		"serve the HTTP API (api.listen: health, metrics, triggered updates, rollbacks,\n"
		"pause and resume). SIGTERM or SIGINT stops it after the swaps in progress;\n"
		"SIGHUP reloads the configuration. With models.names set it also pulls those\n"
		"Ollama models at start and every models.interval (see refit models).\n",
};
