/* libFuzzer target: refit.track label values, version parsing and ordering. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "refit/semver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TAGS 16

/*
 * DATA is lines: the label value, the current tag, then candidate tags.
 * Checks: a parsed rule picks a valid tag above the current version (never a
 * downgrade, never a pre-release for a release), and the order of versions
 * is antisymmetric and agrees with itself.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *line[MAX_TAGS + 2], *save = NULL;
	struct refit_err er = { 0 };
	char *err = er.msg;
	struct semver v[MAX_TAGS + 2];
	bool ok[MAX_TAGS + 2];
	struct track_rule r;
	size_t n = 0;
	long pick;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	for (char *t = strtok_r(s, "\n", &save); t && n < MAX_TAGS + 2; t = strtok_r(NULL, "\n", &save))
		line[n++] = t;
	if (n == 0) {
		free(s);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		ok[i] = semver_parse(line[i], &v[i]) == 0;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < n; k++)
			if (ok[i] && ok[k]) {
				int a = semver_cmp(&v[i], &v[k]), b = semver_cmp(&v[k], &v[i]);

				if ((a > 0) != (b < 0) || (a == 0) != (b == 0))
					abort();
			}
	if (track_parse(line[0], &r, &er) < 0) {
		if (!err[0])
			abort();
		free(s);
		return 0;
	}
	if (n >= 2) {
		const char *cur = line[1];

		pick = track_pick(&r, cur, line + 2, n - 2, &er);
		if (pick < -2 || pick >= (long)(n - 2))
			abort();
		if (pick == -2 && (r.kind != TRACK_SEMVER || ok[1]))
			abort();
		if (pick >= 0) {
			const char *t = line[2 + pick];
			struct semver c, p;

			if (!tag_valid(t) || strcmp(t, cur) == 0)
				abort();
			if (semver_parse(cur, &c) == 0 && semver_parse(t, &p) == 0) {
				if (semver_cmp(&p, &c) <= 0)
					abort(); /* a downgrade */
				if (p.pre[0] && !c.pre[0])
					abort(); /* a pre-release for a release */
			}
			if (r.kind == TRACK_SEMVER && r.has_range && (semver_parse(t, &p) < 0 || !semver_range_match(&r.range, &p)))
				abort();
		}
	}
	track_free(&r);
	free(s);
	return 0;
}
