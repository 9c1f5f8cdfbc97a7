/* Semantic versions of image tags, version constraints and refit.track rules (pure, no I/O). */
#ifndef REFIT_SEMVER_H
#define REFIT_SEMVER_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "refit/error.h"

#define SEMVER_MAX_PRE 128    /* longest pre-release part kept */
#define TRACK_MAX_PATTERN 256 /* longest regex: pattern accepted */

/* MAJOR.MINOR.PATCH[-PRE][+BUILD], with an optional "v" before it. */
struct semver {
	unsigned long long major, minor, patch;
	char pre[SEMVER_MAX_PRE + 1]; /* "" when a release */
};

/*
 * Parse tag S as a version: exactly three numeric parts (no leading zeros),
 * an optional pre-release and build metadata, an optional "v"/"V" first.
 * 0 on success, -1 when S is not one ("latest", "1.2", "01.2.3").
 */
int semver_parse(const char *s, struct semver *ret);

/* <0, 0, >0 as A is lower than, equal to or higher than B (build metadata ignored). */
int semver_cmp(const struct semver *a, const struct semver *b);

/* A range lo <= version < hi from "^2", "~2.3", "2.x", "2.3.*", "2", "1.2.3" (exact). */
struct semver_range {
	struct semver lo; /* inclusive, pre "" */
	struct semver hi; /* exclusive, pre "" */
	bool has_hi;
	bool exact; /* "1.2.3": only that version */
};

/* Parse constraint S (see above); -1 with ERR when it is not one. */
int semver_range_parse(const char *s, struct semver_range *ret, struct refit_err *e);

/* Is V inside R? A pre-release counts by its MAJOR.MINOR.PATCH. */
bool semver_range_match(const struct semver_range *r, const struct semver *v);

enum track_kind { TRACK_DIGEST, TRACK_SEMVER, TRACK_REGEX };

/* A parsed refit.track label. */
struct track_rule {
	enum track_kind kind;
	bool has_range;
	struct semver_range range;
	bool has_re;
	regex_t re;
};

/*
 * Parse a refit.track value: "digest", "semver", "semver:CONSTRAINT" or
 * "regex:PATTERN" (POSIX extended, at most TRACK_MAX_PATTERN bytes). -1 with
 * ERR (a sentence naming the problem) on a bad value; then nothing to free.
 */
int track_parse(const char *s, struct track_rule *ret, struct refit_err *e);

void track_free(struct track_rule *r);

/*
 * The tag to move to from CURRENT (NULL when the container has no tag)
 * among TAGS (in the registry's order): the highest that R allows and that
 * is above CURRENT, never a downgrade. Pre-releases are candidates only when
 * CURRENT is one. Returns its index, -1 when there is none (stay), or -2 with
 * ERR when R cannot apply (semver tracking of a tag that is not a version).
 */
long track_pick(const struct track_rule *r, const char *current, char *const *tags, size_t n, struct refit_err *e);

/* Is S a Docker tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}? */
bool tag_valid(const char *s);

#endif
