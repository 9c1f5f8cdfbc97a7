/* Image references, parsed and normalised as Docker's distribution/reference does. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refit/base.h"
#include "refit/imageref.h"

#define PATH_MAX_LEN 255 /* Docker's RepositoryNameTotalLengthMax, applied to the path */
#define TAG_MAX_LEN 128	 /* [\w][\w.-]{0,127} */
#define QUOTE_MAX 64	 /* input characters quoted in error messages */

static const char default_domain[] = "docker.io";
static const char legacy_domain[] = "index.docker.io";
static const char official_prefix[] = "library/";
static const char default_tag[] = "latest";

/* A piece of the input: not NUL-terminated. */
struct span {
	const char *p;
	size_t n;
};

/* True for [a-z0-9]. */
static bool is_lower_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* True for [A-Za-z]. */
static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* True for [0-9]. */
static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* True for [A-Za-z0-9]. */
static bool is_alnum(unsigned char c)
{
	return is_alpha(c) || is_digit(c);
}

/* True for [0-9A-Fa-f]. */
static bool is_xdigit(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* True for [0-9a-f]. */
static bool is_lower_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* True for \w, that is [A-Za-z0-9_]. */
static bool is_word(unsigned char c)
{
	return is_alnum(c) || c == '_';
}

/* Fill E with a usage error about reference S and return -1. */
static int bad_ref(struct refit_err *e, const char *s, const char *why)
{
	char q[QUOTE_SIZE(QUOTE_MAX)];

	return err_set(e, ERR_USAGE, "invalid image reference \"%s\": %s", quote_input(s, QUOTE_MAX, q), why);
}

/* True when S is exactly 64 lowercase hex digits, which Docker takes for an image ID. */
static bool is_identifier(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!is_lower_hex((unsigned char)s[i]))
			return false;
	return s[64] == '\0';
}

/* True when S matches [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*. */
static bool valid_path_component(struct span s)
{
	size_t i = 0;

	for (;;) {
		if (i >= s.n || !is_lower_alnum((unsigned char)s.p[i]))
			return false;
		while (i < s.n && is_lower_alnum((unsigned char)s.p[i]))
			i++;
		if (i == s.n)
			return true;
		if (s.p[i] == '.') {
			i++;
		} else if (s.p[i] == '_') {
			i++;
			if (i < s.n && s.p[i] == '_')
				i++;
		} else if (s.p[i] == '-') {
			while (i < s.n && s.p[i] == '-')
				i++;
		} else {
			return false;
		}
	}
}

/* True when S is one or more valid path components joined by '/'. */
static bool valid_path(struct span s)
{
	size_t start = 0, i;

	for (i = 0; i <= s.n; i++) {
		if (i == s.n || s.p[i] == '/') {
			struct span c = { s.p + start, i - start };

			if (!valid_path_component(c))
				return false;
			start = i + 1;
		}
	}
	return true;
}

/* True when S matches [a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]. */
static bool valid_domain_component(struct span s)
{
	size_t i;

	if (s.n == 0 || !is_alnum((unsigned char)s.p[0]) ||
	    !is_alnum((unsigned char)s.p[s.n - 1]))
		return false;
	for (i = 1; i < s.n; i++)
		if (!is_alnum((unsigned char)s.p[i]) && s.p[i] != '-')
			return false;
	return true;
}

/* True when S is a host (domain name, or IPv6 address in brackets) with an optional :port. */
static bool valid_domain(struct span s)
{
	size_t i = 0, start;

	if (s.n > 0 && s.p[0] == '[') {
		for (i = 1; i < s.n && s.p[i] != ']'; i++)
			if (!is_xdigit((unsigned char)s.p[i]) && s.p[i] != ':')
				return false;
		if (i == 1 || i == s.n)
			return false;
		i++;
	} else {
		start = 0;
		for (i = 0; i <= s.n; i++) {
			if (i == s.n || s.p[i] == '.' || s.p[i] == ':') {
				struct span c = { s.p + start, i - start };

				if (!valid_domain_component(c))
					return false;
				if (i == s.n || s.p[i] == ':')
					break;
				start = i + 1;
			}
		}
	}
	if (i == s.n)
		return true;
	if (s.p[i] != ':' || i + 1 == s.n)
		return false;
	for (i++; i < s.n; i++)
		if (!is_digit((unsigned char)s.p[i]))
			return false;
	return true;
}

/* True when S matches [\w][\w.-]{0,127}. */
static bool valid_tag(struct span s)
{
	size_t i;

	if (s.n == 0 || s.n > TAG_MAX_LEN || !is_word((unsigned char)s.p[0]))
		return false;
	for (i = 1; i < s.n; i++)
		if (!is_word((unsigned char)s.p[i]) && s.p[i] != '.' && s.p[i] != '-')
			return false;
	return true;
}

/*
 * Check digest S as reference.Parse does: the grammar
 * [A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}, then
 * go-digest's Validate, which knows sha256, sha384 and sha512 (lowercase hex
 * of exactly 64, 96 and 128 digits) and refuses every other algorithm.
 * Returns NULL when valid, else the reason.
 */
static const char *check_digest(struct span s)
{
	static const struct {
		const char *name;
		size_t hex;
	} algs[] = { { "sha256", 64 }, { "sha384", 96 }, { "sha512", 128 } };
	size_t i = 0, colon, k;

	for (;;) {
		if (i >= s.n || !is_alpha((unsigned char)s.p[i]))
			return "invalid digest format";
		while (i < s.n && is_alnum((unsigned char)s.p[i]))
			i++;
		if (i < s.n && s.p[i] != '\0' && strchr("-_+.", s.p[i]))
			i++;
		else
			break;
	}
	if (i >= s.n || s.p[i] != ':')
		return "invalid digest format";
	colon = i;
	for (i++; i < s.n; i++)
		if (!is_xdigit((unsigned char)s.p[i]))
			return "invalid digest format";
	if (s.n - colon - 1 < 32)
		return "invalid digest format (digest too short)";
	for (k = 0; k < sizeof(algs) / sizeof(algs[0]); k++) {
		if (colon != strlen(algs[k].name) || memcmp(s.p, algs[k].name, colon) != 0)
			continue;
		if (s.n - colon - 1 != algs[k].hex)
			return "invalid digest format (wrong length)";
		for (i = colon + 1; i < s.n; i++)
			if (!is_lower_hex((unsigned char)s.p[i]))
				return "invalid digest format (hex must be lowercase)";
		return NULL;
	}
	return "unsupported digest algorithm";
}

/* Copy N bytes of P into a new NUL-terminated string, after PREFIX if any. */
static char *dup_span(const char *prefix, const char *p, size_t n)
{
	size_t pn = prefix ? strlen(prefix) : 0;
	char *r = malloc(pn + n + 1);

	if (!r)
		return NULL;
	if (pn)
		memcpy(r, prefix, pn);
	memcpy(r + pn, p, n);
	r[pn + n] = '\0';
	return r;
}

/* Length of the full normalised form of R, without the terminating NUL. */
static size_t string_len(const struct imageref *r)
{
	size_t n = strlen(r->domain) + 1 + strlen(r->path);

	if (r->tag)
		n += 1 + strlen(r->tag);
	if (r->digest)
		n += 1 + strlen(r->digest);
	return n;
}

/* Parse S as ParseNormalizedNamed then TagNameOnly do; see imageref.h. */
int imageref_parse(const char *s, struct imageref *ret, struct refit_err *e)
{
	struct span domain, name, tag = { NULL, 0 }, digest = { NULL, 0 };
	const char *slash, *rest, *p, *why;
	bool has_tag = false, has_digest = false, library = false;
	size_t len, i;

	if (!ret)
		return err_set(e, ERR_USAGE, "invalid image reference: no result");
	memset(ret, 0, sizeof(*ret));
	if (!s || !*s)
		return err_set(e, ERR_USAGE, "invalid image reference: empty");
	len = strnlen(s, IMAGEREF_MAX + 1);
	if (len > IMAGEREF_MAX)
		return bad_ref(e, s, "longer than 1024 characters");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
			return bad_ref(e, s, "contains whitespace");
		if (c < 0x20 || c >= 0x7f)
			return bad_ref(e, s, "contains a control or non-ASCII character");
	}
	if (is_identifier(s))
		return bad_ref(e, s, "cannot specify 64-byte hexadecimal strings");

	/* splitDockerDomain: is the first component a registry? */
	slash = strchr(s, '/');
	if (!slash) {
		domain = (struct span){ default_domain, sizeof(default_domain) - 1 };
		rest = s;
	} else {
		struct span first = { s, (size_t)(slash - s) };
		bool upper = false;

		for (i = 0; i < first.n; i++)
			if (s[i] >= 'A' && s[i] <= 'Z')
				upper = true;
		if (first.n == sizeof(legacy_domain) - 1 &&
		    memcmp(s, legacy_domain, first.n) == 0) {
			domain = (struct span){ default_domain, sizeof(default_domain) - 1 };
			rest = slash + 1;
		} else if ((first.n == 9 && memcmp(s, "localhost", 9) == 0) ||
			   memchr(s, '.', first.n) || memchr(s, ':', first.n) || upper) {
			domain = first;
			rest = slash + 1;
		} else {
			domain = (struct span){ default_domain, sizeof(default_domain) - 1 };
			rest = s;
		}
	}

	/* name[:tag][@digest]: the name ends at the first ':' or '@' */
	name.p = rest;
	name.n = strcspn(rest, ":@");
	p = rest + name.n;
	if (*p == ':') {
		has_tag = true;
		tag.p = p + 1;
		tag.n = strcspn(tag.p, "@");
		p = tag.p + tag.n;
	}
	if (*p == '@') {
		has_digest = true;
		digest.p = p + 1;
		digest.n = strlen(digest.p);
	}
	/* Docker Hub's single-component names live under library/ */
	if (domain.n == sizeof(default_domain) - 1 &&
	    memcmp(domain.p, default_domain, domain.n) == 0 && !strchr(rest, '/'))
		library = true;

	if (name.n == 0)
		return bad_ref(e, s, "missing repository name");
	for (i = 0; i < name.n; i++)
		if (name.p[i] >= 'A' && name.p[i] <= 'Z')
			return bad_ref(e, s, "repository name must be lowercase");
	if (!valid_domain(domain)) {
		/*
		 * Docker would take "a_b.c/d" as a path with an empty domain;
		 * refit needs a registry to ask, so it refuses.
		 */
		return bad_ref(e, s, "invalid registry domain");
	}
	if (!valid_path(name))
		return bad_ref(e, s, "invalid repository name");
	if (name.n + (library ? sizeof(official_prefix) - 1 : 0) > PATH_MAX_LEN)
		return bad_ref(e, s, "repository name must not be more than 255 characters");
	if (has_tag && tag.n == 0)
		return bad_ref(e, s, "empty tag");
	if (has_tag && !valid_tag(tag))
		return bad_ref(e, s, "invalid tag format");
	if (has_digest && digest.n == 0)
		return bad_ref(e, s, "empty digest");
	if (has_digest && (why = check_digest(digest)))
		return bad_ref(e, s, why);

	ret->domain = dup_span(NULL, domain.p, domain.n);
	ret->path = dup_span(library ? official_prefix : NULL, name.p, name.n);
	if (has_tag)
		ret->tag = dup_span(NULL, tag.p, tag.n);
	else if (!has_digest)
		ret->tag = dup_span(NULL, default_tag, sizeof(default_tag) - 1);
	if (has_digest)
		ret->digest = dup_span(NULL, digest.p, digest.n);
	if (!ret->domain || !ret->path || (!ret->tag && !has_digest) ||
	    (has_digest && !ret->digest)) {
		imageref_free(ret);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	/* Keep every parsed reference printable and parseable again. */
	if (string_len(ret) > IMAGEREF_MAX) {
		imageref_free(ret);
		return bad_ref(e, s, "longer than 1024 characters once normalised");
	}
	return 0;
}

/* Free the strings of R and zero it. */
void imageref_free(struct imageref *r)
{
	if (!r)
		return;
	free(r->domain);
	free(r->path);
	free(r->tag);
	free(r->digest);
	memset(r, 0, sizeof(*r));
}

/* Return "domain/path" in a new string, or NULL when out of memory. */
char *imageref_repository(const struct imageref *r)
{
	size_t n;
	char *out;

	if (!r || !r->domain || !r->path)
		return NULL;
	n = strlen(r->domain) + 1 + strlen(r->path) + 1;
	out = malloc(n);
	if (out)
		snprintf(out, n, "%s/%s", r->domain, r->path);
	return out;
}

/* Return "domain/path[:tag][@digest]" in a new string, or NULL when out of memory. */
char *imageref_string(const struct imageref *r)
{
	size_t n;
	char *out;

	if (!r || !r->domain || !r->path)
		return NULL;
	n = string_len(r) + 1;
	out = malloc(n);
	if (out)
		snprintf(out, n, "%s/%s%s%s%s%s", r->domain, r->path, r->tag ? ":" : "",
			 r->tag ? r->tag : "", r->digest ? "@" : "", r->digest ? r->digest : "");
	return out;
}

/* Return the host serving R's registry: Docker Hub's is registry-1.docker.io. */
const char *imageref_registry_host(const struct imageref *r)
{
	if (!r || !r->domain)
		return NULL;
	if (strcmp(r->domain, default_domain) == 0)
		return "registry-1.docker.io";
	return r->domain;
}
