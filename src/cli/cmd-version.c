/* `refit version`: refit's version and the negotiated Docker API version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "refit/version.h"

static int run_version(struct refit_config *cfg)
{
	struct engine *en = NULL;
	struct refit_err e = { 0 };

	printf("refit %s\n", refit_version);
	if (engine_open(&en, cfg->docker_host, &e) < 0) {
		printf("Docker engine: not reachable (%s)\n", e.msg);
		return e.kind ? e.kind : ERR_FAILED;
	}
	printf("Docker engine %s, API %s\n", engine_server_version(en), engine_api_version(en));
	engine_close(en);
	return 0;
}

const struct command cmd_version = {
	.name = "version",
	.run = run_version,
	.takes_names = false,
	.options = 0,
	.usage = "refit version",
	.help = "Print refit's version and the Docker API version negotiated with the engine.\n",
};
