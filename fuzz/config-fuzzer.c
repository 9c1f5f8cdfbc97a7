/* libFuzzer target: YAML configuration files. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "refit/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct refit_config cfg;
	struct refit_err e = { 0 };

	if (config_init(&cfg, &e) < 0)
		return 0;
	if (config_load_buffer(&cfg, (const char *)data, size, "fuzz.yml", &e) < 0) {
		/* Every failure explains itself. */
		if (e.msg[0] == '\0')
			__builtin_trap();
	} else if (cfg.concurrency < 1 || cfg.concurrency > 64 || cfg.poll_interval < 1 || !cfg.strategy) {
		__builtin_trap(); /* accepted values stay in range */
	}
	config_free(&cfg);
	return 0;
}
