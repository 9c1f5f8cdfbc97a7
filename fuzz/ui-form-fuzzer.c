/* libFuzzer target: the dashboard's form bodies (application/x-www-form-urlencoded), and HTML escaping. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "refit/ui.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ui_form f;
	struct refit_err e = { 0 };
	struct ui_buf b = { 0 };

	if (ui_form_parse((const char *)data, size, &f, &e) < 0)
		return 0;
	for (size_t i = 0; i < f.n; i++) {
		if (ui_form_get(&f, f.name[i]) != f.value[i] || strlen(f.value[i]) > UI_FORM_MAX_VALUE)
			__builtin_trap(); /* names are unique, values bounded */
		ui_buf_html(&b, f.value[i]);
	}
	if (b.s && (strchr(b.s, '<') || strchr(b.s, '>') || strchr(b.s, '"')))
		__builtin_trap(); /* escaped text has none of them */
	ui_buf_free(&b);
	return 0;
}
