/* libFuzzer target: the Cookie header as the dashboard reads its session cookie. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "refit/ui.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char hdr[UI_COOKIE_MAX + 2], out[65];
	int rc;

	if (size > UI_COOKIE_MAX + 1)
		return 0;
	memcpy(hdr, data, size);
	hdr[size] = '\0';
	rc = ui_cookie_get(hdr, "refit_session", out, sizeof(out));
	if (rc == 1 && (strlen(out) >= sizeof(out) || strpbrk(out, " ;,\"\\")))
		__builtin_trap(); /* a value is cookie-octets only, and fits */
	return 0;
}
