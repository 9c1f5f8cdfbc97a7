/* Versions, constraints and track rules: which tag a tracked container moves to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refit/semver.h"

#define MAX_NUM_DIGITS 18 /* fits unsigned long long with room */

/* Read a numeric part without leading zeros; advance *S. -1 when there is none. */
static int read_num(const char **s, unsigned long long *ret)
{
	const char *p = *s;
	unsigned long long v = 0;
	size_t n = 0;

	while (p[n] >= '0' && p[n] <= '9') {
		if (n >= MAX_NUM_DIGITS)
			return -1;
		v = v * 10 + (unsigned long long)(p[n] - '0');
		n++;
	}
	if (n == 0 || (n > 1 && p[0] == '0'))
		return -1;
	*s = p + n;
	*ret = v;
	return 0;
}

/* Are the dot-separated identifiers in S[0..LEN) well formed (numeric ones without leading zeros when STRICT)? */
static bool idents_ok(const char *s, size_t len, bool strict)
{
	size_t start = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			char c = s[i];

			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-'))
				return false;
			continue;
		}
		if (i == start)
			return false; /* empty identifier */
		if (strict && s[start] == '0' && i - start > 1 && strspn(s + start, "0123456789") >= i - start)
			return false;
		start = i + 1;
	}
	return true;
}

int semver_parse(const char *s, struct semver *ret)
{
	struct semver v;
	const char *p = s, *plus;
	size_t prelen;

	if (!s)
		return -1;
	memset(&v, 0, sizeof(v));
	if (*p == 'v' || *p == 'V')
		p++;
	if (read_num(&p, &v.major) < 0 || *p++ != '.' || read_num(&p, &v.minor) < 0 || *p++ != '.' ||
	    read_num(&p, &v.patch) < 0)
		return -1;
	plus = strchr(p, '+');
	if (*p == '-') {
		p++;
		prelen = plus ? (size_t)(plus - p) : strlen(p);
		if (prelen > SEMVER_MAX_PRE || !idents_ok(p, prelen, true))
			return -1;
		memcpy(v.pre, p, prelen);
		v.pre[prelen] = '\0';
		p += prelen;
	}
	if (*p == '+') {
		p++;
		if (!idents_ok(p, strlen(p), false))
			return -1;
		p += strlen(p);
	}
	if (*p)
		return -1;
	*ret = v;
	return 0;
}

/* Compare two pre-release strings by semver's rules ("" is a release: highest). */
static int pre_cmp(const char *a, const char *b)
{
	if (!*a || !*b)
		return !*a && !*b ? 0 : !*a ? 1 : -1;
	for (;;) {
		size_t la = strcspn(a, "."), lb = strcspn(b, ".");
		bool na = strspn(a, "0123456789") >= la, nb = strspn(b, "0123456789") >= lb;
		int c;

		if (na && nb) {
			/* Numeric: the longer is larger (no leading zeros), else by digits. */
			if (la != lb)
				return la < lb ? -1 : 1;
			c = strncmp(a, b, la);
		} else if (na != nb) {
			c = na ? -1 : 1; /* numeric identifiers are lower */
		} else {
			c = strncmp(a, b, la < lb ? la : lb);
			if (c == 0 && la != lb)
				c = la < lb ? -1 : 1;
		}
		if (c)
			return c < 0 ? -1 : 1;
		a += la;
		b += lb;
		if (!*a || !*b)
			return !*a && !*b ? 0 : !*a ? -1 : 1; /* more identifiers: higher */
		a++;
		b++;
	}
}

/* Compare the MAJOR.MINOR.PATCH parts only. */
static int triple_cmp(const struct semver *a, const struct semver *b)
{
	if (a->major != b->major)
		return a->major < b->major ? -1 : 1;
	if (a->minor != b->minor)
		return a->minor < b->minor ? -1 : 1;
	if (a->patch != b->patch)
		return a->patch < b->patch ? -1 : 1;
	return 0;
}

int semver_cmp(const struct semver *a, const struct semver *b)
{
	int c = triple_cmp(a, b);

	return c ? c : pre_cmp(a->pre, b->pre);
}

/* Is S an "x" wildcard part? */
static bool is_wild(const char *s)
{
	return (*s == 'x' || *s == 'X' || *s == '*') && (s[1] == '\0' || s[1] == '.');
}

int semver_range_parse(const char *s, struct semver_range *ret, struct refit_err *e)
{
	struct semver_range r;
	unsigned long long part[3] = { 0, 0, 0 };
	const char *p = s;
	char op = 0;
	int nparts = 0;

	memset(&r, 0, sizeof(r));
	if (*p == '^' || *p == '~')
		op = *p++;
	else if (*p == '=')
		p++;
	if (*p == 'v' || *p == 'V')
		p++;
	while (nparts < 3) {
		if (is_wild(p)) {
			p++;
			/* Everything after a wildcard must be wildcards too. */
			while (*p == '.' && is_wild(p + 1))
				p += 2;
			break;
		}
		if (read_num(&p, &part[nparts]) < 0)
			goto bad;
		nparts++;
		if (*p != '.')
			break;
		p++;
		if (nparts == 3)
			goto bad;
	}
	if (*p || nparts == 0)
		goto bad;
	if (op && strpbrk(s, "xX*"))
		goto bad; /* "^2.x" is not a form refit knows: write "^2" */
	r.lo.major = part[0];
	r.lo.minor = part[1];
	r.lo.patch = part[2];
	r.has_hi = true;
	if (op == '^') {
		/* The leftmost non-zero part given may not change. */
		if (part[0] > 0 || nparts == 1)
			r.hi.major = part[0] + 1;
		else if (part[1] > 0 || nparts == 2)
			r.hi.minor = part[1] + 1;
		else
			r.hi.patch = part[2] + 1;
	} else if (op == '~' || nparts < 3) {
		/* ~1.2.3 and ~1.2: the minor stays; ~1, 1.x: the major stays. */
		r.hi.major = part[0];
		if (nparts == 1)
			r.hi.major = part[0] + 1;
		else
			r.hi.minor = part[1] + 1;
	} else {
		r.exact = true;
		r.has_hi = false;
	}
	*ret = r;
	return 0;
bad:
	err_set(e, ERR_USAGE, "\"%.64s\" is not a version constraint (^2, ~2.3, 2.x, 2.3.*, 1.2.3)", s);
	return -1;
}

bool semver_range_match(const struct semver_range *r, const struct semver *v)
{
	if (r->exact)
		return triple_cmp(v, &r->lo) == 0;
	return triple_cmp(v, &r->lo) >= 0 && (!r->has_hi || triple_cmp(v, &r->hi) < 0);
}

/*
 * Why PATTERN would make regcomp() expensive, or NULL. glibc builds a copy
 * of a subexpression for each "+" and for each count of "{m,n}", so stacked
 * repetitions ("a+++...") and repeated groups grow its memory exponentially
 * (a 70-byte label took 2 GiB). Allowed: no repetition operator right after
 * another, at most one "{m,n}" with counts up to 16, at most three repeated
 * groups ("(...)+", "(...)*", ...).
 */
static const char *pattern_too_costly(const char *p)
{
	bool after_rep = false, after_group = false;
	int intervals = 0, groups = 0;

	for (; *p; p++) {
		bool rep = *p == '*' || *p == '+' || *p == '?' || *p == '{';

		if (*p == '\\') {
			if (p[1])
				p++;
			after_rep = after_group = false;
			continue;
		}
		if (*p == '[') { /* a bracket expression: its characters are literals */
			const char *q = p + 1;

			if (*q == '^')
				q++;
			if (*q == ']')
				q++;
			while (*q && *q != ']')
				q++;
			if (!*q)
				return NULL; /* unterminated: regcomp says so */
			p = q;
			after_rep = after_group = false;
			continue;
		}
		if (rep && after_rep)
			return "a repetition operator may not follow another one";
		if (rep && after_group && ++groups > 3)
			return "at most three repeated groups";
		if (*p == '{') {
			char *end;
			long m = strtol(p + 1, &end, 10), n = m;

			if (*end == ',')
				n = end[1] == '}' ? 17 : strtol(end + 1, &end, 10);
			if (++intervals > 1 || m > 16 || n > 16)
				return "at most one {m,n} with counts up to 16";
			if (!(end = strchr(p, '}')))
				return NULL; /* unterminated: regcomp says so */
			p = end; /* the counts are not characters of the pattern */
		}
		after_rep = rep;
		after_group = *p == ')';
	}
	return NULL;
}

int track_parse(const char *s, struct track_rule *ret, struct refit_err *e)
{
	memset(ret, 0, sizeof(*ret));
	if (!s || strcmp(s, "digest") == 0 || strcmp(s, "") == 0) {
		ret->kind = TRACK_DIGEST;
		return 0;
	}
	if (strcmp(s, "semver") == 0) {
		ret->kind = TRACK_SEMVER;
		return 0;
	}
	if (strncmp(s, "semver:", 7) == 0) {
		struct refit_err re = { 0 };

		if (strlen(s + 7) > 64 || semver_range_parse(s + 7, &ret->range, &re) < 0) {
			err_set(e, ERR_USAGE, "label refit.track: %.300s", strlen(s + 7) > 64 ? "constraint longer than 64 bytes" : re.msg);
			return -1;
		}
		ret->kind = TRACK_SEMVER;
		ret->has_range = true;
		return 0;
	}
	if (strncmp(s, "regex:", 6) == 0) {
		size_t len = strlen(s + 6);
		const char *costly;
		int rc;

		if (len == 0 || len > TRACK_MAX_PATTERN) {
			err_set(e, ERR_USAGE, "label refit.track: regex: the pattern must be 1 to %d bytes",
				 TRACK_MAX_PATTERN);
			return -1;
		}
		if ((costly = pattern_too_costly(s + 6))) {
			err_set(e, ERR_USAGE, "label refit.track: regex: %s", costly);
			return -1;
		}
		rc = regcomp(&ret->re, s + 6, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			char why[160];

			regerror(rc, &ret->re, why, sizeof(why));
			err_set(e, ERR_USAGE, "label refit.track: regex \"%.64s\": %s", s + 6, why);
			return -1;
		}
		ret->kind = TRACK_REGEX;
		ret->has_re = true;
		return 0;
	}
	err_set(e, ERR_USAGE, "label refit.track: \"%.64s\" is not digest, semver, semver:CONSTRAINT or regex:PATTERN", s);
	return -1;
}

void track_free(struct track_rule *r)
{
	if (r && r->has_re) {
		regfree(&r->re);
		r->has_re = false;
	}
}

bool tag_valid(const char *s)
{
	size_t len;

	if (!s)
		return false;
	len = strlen(s);
	if (len == 0 || len > 128 || s[0] == '.' || s[0] == '-')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == len;
}

long track_pick(const struct track_rule *r, const char *current, char *const *tags, size_t n, struct refit_err *e)
{
	struct semver cur, best, v;
	bool have_cur = current && semver_parse(current, &cur) == 0;
	bool allow_pre = have_cur && cur.pre[0];
	long best_i = -1, last_match = -1, cur_pos = -1;

	if (r->kind == TRACK_DIGEST)
		return -1;
	if (r->kind == TRACK_SEMVER && current && !have_cur) {
		err_set(e, ERR_USAGE, "refit.track=semver: the current tag \"%.64s\" is not a version (MAJOR.MINOR.PATCH)",
			 current);
		return -2;
	}
	for (size_t i = 0; i < n; i++) {
		const char *t = tags[i];

		if (!tag_valid(t))
			continue;
		if (current && strcmp(t, current) == 0)
			cur_pos = (long)i;
		if (r->kind == TRACK_REGEX && regexec(&r->re, t, 0, NULL, 0) != 0)
			continue;
		if (r->kind == TRACK_REGEX)
			last_match = (long)i;
		if (semver_parse(t, &v) < 0)
			continue;
		if (v.pre[0] && !allow_pre)
			continue;
		if (r->has_range && !semver_range_match(&r->range, &v))
			continue;
		if (have_cur && semver_cmp(&v, &cur) <= 0)
			continue; /* never a downgrade, nor a move to the same version */
		if (best_i < 0 || semver_cmp(&v, &best) > 0) {
			best = v;
			best_i = (long)i;
		}
	}
	if (r->kind == TRACK_SEMVER || best_i >= 0 || have_cur)
		return best_i;
	/* regex over tags that are not versions: the registry's order, only forward. */
	if (last_match < 0 || last_match <= cur_pos || (current && strcmp(tags[last_match], current) == 0))
		return -1;
	return last_match;
}
