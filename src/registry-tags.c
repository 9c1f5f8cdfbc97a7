/* Tag lists from registries: the tags/list body and the Link header of its pages. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "refit/semver.h"
#include "refit/tags.h"

#define LINK_MAX_HEADER (16u << 10)

int tags_parse_body(const char *body, size_t len, struct tag_list *l, struct refit_err *e)
{
	json_error_t jerr;
	json_t *j, *tags, *t;
	size_t i;

	if (!body || len == 0 || len > TAGS_MAX_BODY) {
		err_set(e, ERR_FAILED, "tags/list: %s", len ? "answer too large" : "empty answer");
		return -1;
	}
	j = json_loadb(body, len, 0, &jerr);
	if (!json_is_object(j)) {
		json_decref(j);
		err_set(e, ERR_FAILED, "tags/list: not a JSON object");
		return -1;
	}
	tags = json_object_get(j, "tags");
	if (!json_is_array(tags) && !json_is_null(tags)) {
		json_decref(j);
		err_set(e, ERR_FAILED, "tags/list: no \"tags\" array");
		return -1;
	}
	json_array_foreach(tags, i, t) {
		const char *s = json_string_value(t);
		char **nv, *copy;

		if (!s || !tag_valid(s))
			continue;
		if (l->n >= TAGS_MAX_TOTAL) {
			l->truncated = true;
			break;
		}
		/* Room for 16, then doubling at each power of two; TAGS_MAX_TOTAL bounds it. */
		if (l->n == 0 || (l->n >= 16 && (l->n & (l->n - 1)) == 0)) {
			nv = realloc(l->v, (l->n ? l->n * 2 : 16) * sizeof(*nv));
			if (!nv)
				goto oom;
			l->v = nv;
		}
		if (!(copy = strdup(s)))
			goto oom;
		l->v[l->n++] = copy;
	}
	json_decref(j);
	return 0;
oom:
	json_decref(j);
	err_set(e, ERR_FAILED, "out of memory");
	return -1;
}

/* Skip optional white space. */
static const char *ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Length of the token at P (RFC 9110 tchar). */
static size_t token_len(const char *p)
{
	return strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+.^_`|~-");
}

/* Does the space-separated list V[0..N) hold "next"? */
static bool has_next(const char *v, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t w;

		while (i < n && v[i] == ' ')
			i++;
		for (w = 0; i + w < n && v[i + w] != ' '; w++)
			;
		if (w == 4 && strncasecmp(v + i, "next", 4) == 0)
			return true;
		i += w;
	}
	return false;
}

int tags_parse_link(const char *link, char **ret, struct refit_err *e)
{
	const char *p = link;

	*ret = NULL;
	if (!link)
		return 0;
	if (strlen(link) > LINK_MAX_HEADER) {
		err_set(e, ERR_FAILED, "Link header longer than %u bytes", LINK_MAX_HEADER);
		return -1;
	}
	for (;;) {
		const char *uri, *end;
		size_t ulen;
		bool next = false;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			return 0;
		if (*p != '<')
			goto bad;
		uri = p + 1;
		end = strchr(uri, '>');
		if (!end)
			goto bad;
		ulen = (size_t)(end - uri);
		p = end + 1;
		for (;;) {
			const char *name, *val;
			size_t nlen, vlen;

			p = ows(p);
			if (*p == ',' || !*p)
				break;
			if (*p != ';')
				goto bad;
			p = ows(p + 1);
			name = p;
			nlen = token_len(p);
			if (nlen == 0)
				goto bad;
			p = ows(p + nlen);
			if (*p != '=') {
				continue; /* a parameter without a value */
			}
			p = ows(p + 1);
			if (*p == '"') {
				char buf[256];
				size_t k = 0;

				for (p++; *p && *p != '"'; p++) {
					if (*p == '\\' && p[1])
						p++;
					if (k + 1 < sizeof(buf))
						buf[k++] = *p;
				}
				if (*p != '"')
					goto bad;
				p++;
				buf[k] = '\0';
				val = buf;
				vlen = k;
				if (nlen == 3 && strncasecmp(name, "rel", 3) == 0 && has_next(val, vlen))
					next = true;
			} else {
				vlen = token_len(p);
				if (vlen == 0)
					goto bad;
				if (nlen == 3 && strncasecmp(name, "rel", 3) == 0 && has_next(p, vlen))
					next = true;
				p += vlen;
			}
		}
		if (!next)
			continue;
		if (ulen == 0 || ulen > TAGS_MAX_LINK) {
			err_set(e, ERR_FAILED, "Link header: next page reference empty or longer than %d bytes", TAGS_MAX_LINK);
			return -1;
		}
		for (size_t i = 0; i < ulen; i++)
			if ((unsigned char)uri[i] <= ' ' || (unsigned char)uri[i] >= 0x7f) {
				err_set(e, ERR_FAILED, "Link header: next page reference has spaces or control characters");
				return -1;
			}
		if (uri[0] != '/' && strncasecmp(uri, "http://", 7) != 0 && strncasecmp(uri, "https://", 8) != 0) {
			err_set(e, ERR_FAILED, "Link header: next page \"%.*s\" is neither a path nor an http(s) URL",
				 (int)(ulen > 80 ? 80 : ulen), uri);
			return -1;
		}
		*ret = strndup(uri, ulen);
		if (!*ret) {
			err_set(e, ERR_FAILED, "out of memory");
			return -1;
		}
		return 0;
	}
bad:
	err_set(e, ERR_FAILED, "Link header is malformed: \"%.80s\"", link);
	return -1;
}

void tag_list_free(struct tag_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}
