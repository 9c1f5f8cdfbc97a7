/*
 * libFuzzer target: a Watchtower command line and WATCHTOWER_* variables.
 * The input is words separated by newlines; words of the form NAME=VALUE
 * starting with WATCHTOWER_ are variables, the others argv.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refit/config.h"
#include "refit/watchtower.h"

/* One command word stands for refit's table. */
static bool is_check(const char *w)
{
	return strcmp(w, "check") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char prog[] = "refit";
	char *buf, *argv[65], *envp[33], *save = NULL;
	int argc = 1, envc = 0;
	struct watchtower wt;
	struct refit_config cfg;
	struct refit_err e = { 0 };
	const char *config = NULL;

	if (size > 4096 || !(buf = malloc(size + 1)))
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[0] = prog;
	for (char *w = strtok_r(buf, "\n", &save); w; w = strtok_r(NULL, "\n", &save)) {
		if (strncmp(w, "WATCHTOWER_", 11) == 0 && strchr(w, '=') && envc < 32)
			envp[envc++] = w;
		else if (argc < 64)
			argv[argc++] = w;
	}
	argv[argc] = NULL;
	envp[envc] = NULL;
	(void)watchtower_invocation(argc, argv, is_check);
	if (watchtower_parse(&wt, argc, argv, 1, &config, &e) == 0) {
		if (config_init(&cfg, &e) == 0) {
			watchtower_defaults(&cfg);
			if (config_load_env(&cfg, envp, &e) == 0 && watchtower_apply_flags(&cfg, &wt, &e) == 0 &&
			    config_finish(&cfg, &e) == 0) {
				if (!cfg.api_listen || cfg.concurrency < 1 || cfg.concurrency > 64)
					__builtin_trap(); /* accepted values stay in range */
			} else if (!e.msg[0]) {
				__builtin_trap(); /* every refusal explains itself */
			}
			config_free(&cfg);
		}
	} else if (!e.msg[0]) {
		__builtin_trap();
	}
	free(wt.names);
	free(buf);
	return 0;
}
