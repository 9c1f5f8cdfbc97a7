/* Registry client: ping, challenge, token and manifest requests driven by one curl multi handle. */
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "refit/base.h"
#include "refit/auth.h"
#include "refit/challenge.h"
#include "refit/http.h"
#include "refit/log.h"
#include "refit/registry.h"
#include "refit/tags.h"
#include "refit/version.h"

#define MANIFEST_ACCEPT                                                                   \
	"Accept: application/vnd.oci.image.index.v1+json, "                               \
	"application/vnd.oci.image.manifest.v1+json, "                                    \
	"application/vnd.docker.distribution.manifest.list.v2+json, "                     \
	"application/vnd.docker.distribution.manifest.v2+json"
#define CONNECT_TIMEOUT 10L
#define MAX_SMALL_BODY (64u << 10)

enum host_state { H_NEW, H_PINGING, H_READY, H_FAILED };

/* What refit knows about one registry host. */
struct host {
	struct host *next;
	char *name;     /* as written in references: "127.0.0.1:5000", "docker.io" */
	char *endpoint; /* what to connect to: "registry-1.docker.io" for docker.io */
	bool https;
	bool may_fallback; /* loopback or insecure: plain HTTP when TLS is not spoken */
	bool no_verify;    /* listed in insecure_registries */
	bool single_scope; /* refused a token request for several repositories: one per repository */
	enum host_state state;
	struct challenge ch; /* scheme NONE when the registry asks for nothing */
	int cred_state;      /* 0 not looked up, 1 found, 2 none, -1 broken */
	struct cred cred;
	int err_kind;
	char err[256];
};

enum token_state { T_NEW, T_FETCHING, T_READY, T_FAILED };

/* A bearer token for one realm, service and scope. */
struct token {
	struct token *next;
	char *key; /* "realm service scope" */
	const char *scope; /* in KEY */
	char *value;
	long long expires_ms;
	enum token_state state;
	bool solo; /* asked alone: a request with other scopes was refused or did not grant this one */
	int err_kind;
	char err[256];
};

/*
 * One token request for the scopes of several tokens of a host: each
 * member gets the answer for the scopes it grants (one request per
 * registry and pass instead of one per repository).
 */
struct token_req {
	struct token *m[REGISTRY_TOKEN_SCOPES];
	size_t n;
};

enum job_state { J_WAIT, J_ACTIVE, J_DONE };

/* The work on one digest query. */
struct job {
	struct digest_query *q;
	struct host *host;
	char *scope;
	struct token *tok;
	enum job_state state;
	bool want_get;   /* HEAD gave no digest: GET the manifest */
	int auth_retries;
	int retries;     /* of a manifest request after a 5xx, 429 or a cut connection */
	long long not_before; /* monotonic ms before which the next try waits */
	struct tags_query *tq; /* a tag listing, not a manifest lookup */
	char *next;            /* the next page of a tag listing: a path or a URL on the host */
};

#define MANIFEST_RETRIES 2      /* after the first try: waits of 1 s, then 2 s */
#define MAX_RETRY_AFTER 10      /* seconds of Retry-After refit waits; longer is a failure */

enum xfer_kind { X_PING, X_TOKEN, X_MANIFEST, X_TAGS };

/* One transfer in the multi handle. */
struct xfer {
	CURL *easy;
	enum xfer_kind kind;
	void *target; /* struct host, struct token or struct job */
	struct host *host;
	struct curl_slist *hdrs;
	struct http_response resp;
	char *post;
	char errbuf[CURL_ERROR_SIZE];
};

struct registry {
	const struct refit_config *cfg;
	CURLM *multi;
	struct host *hosts;
	struct token *tokens;
	struct curl_blob ca_blob; /* system bundle + registry_ca_file, when set */
	char *ca_data;
	unsigned active;
	struct registry_stats stats;
	struct job *jobs; /* of the run in progress, so a token request can take other jobs' scopes */
	size_t njobs;
	json_t *remembered; /* the references the last pass asked for (registry_remember) */
};

int registry_digest_valid(const char *d)
{
	size_t want;

	if (strncmp(d, "sha256:", 7) == 0)
		want = 64, d += 7;
	else if (strncmp(d, "sha512:", 7) == 0)
		want = 128, d += 7;
	else
		return 0;
	for (size_t i = 0; i < want; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
			return 0;
	return d[want] == '\0';
}

const char *registry_digest_short(const char *d, char buf[16])
{
	const char *colon;

	if (!d)
		return "-";
	colon = strchr(d, ':');
	snprintf(buf, 16, "%.12s", colon ? colon + 1 : d);
	return buf;
}

/* Host part of "host:port" / "[v6]:port" without the port, into BUF. */
static void host_only(const char *name, char *buf, size_t size)
{
	size_t n;

	if (name[0] == '[') {
		n = strcspn(name + 1, "]");
		snprintf(buf, size, "%.*s", (int)n, name + 1);
		return;
	}
	n = strcspn(name, ":");
	snprintf(buf, size, "%.*s", (int)n, name);
}

/* Is NAME's host on 127.0.0.0/8, ::1 or localhost? */
static bool is_loopback(const char *name)
{
	char h[256];

	host_only(name, h, sizeof(h));
	return strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0 || strcasecmp(h, "localhost") == 0;
}

/* Is NAME listed in insecure_registries (with or without its port)? */
static bool is_insecure(const struct refit_config *cfg, const char *name)
{
	char h[256];

	host_only(name, h, sizeof(h));
	for (size_t i = 0; i < cfg->insecure_registries.n; i++) {
		const char *v = cfg->insecure_registries.v[i];

		if (strcasecmp(v, name) == 0 || strcasecmp(v, h) == 0)
			return true;
	}
	return false;
}

/* Find or add the state of registry host NAME. */
static struct host *host_get(struct registry *r, const struct imageref *ref)
{
	struct host *h;

	for (h = r->hosts; h; h = h->next)
		if (strcmp(h->name, ref->domain) == 0)
			return h;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->name = strdup(ref->domain);
	h->endpoint = strdup(imageref_registry_host(ref));
	if (!h->name || !h->endpoint) {
		free(h->name);
		free(h->endpoint);
		free(h);
		return NULL;
	}
	h->https = true;
	h->no_verify = is_insecure(r->cfg, h->name);
	h->may_fallback = h->no_verify || is_loopback(h->name);
	h->next = r->hosts;
	r->hosts = h;
	return h;
}

/* Find or add the token slot for KEY, whose last word is the scope. */
static struct token *token_get(struct registry *r, const char *key)
{
	struct token *t;

	for (t = r->tokens; t; t = t->next)
		if (strcmp(t->key, key) == 0)
			return t;
	t = calloc(1, sizeof(*t));
	if (!t || !(t->key = strdup(key))) {
		free(t);
		return NULL;
	}
	t->scope = strrchr(t->key, ' ') ? strrchr(t->key, ' ') + 1 : t->key;
	t->next = r->tokens;
	r->tokens = t;
	return t;
}

/* Read the system CA bundle and registry_ca_file into one PEM blob. */
static int load_ca_blob(struct registry *r, struct refit_err *e)
{
	const char *files[2] = { NULL, r->cfg->registry_ca_file };
	curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
	size_t len = 0;

	files[0] = vi->cainfo ? vi->cainfo : "/etc/ssl/certs/ca-certificates.crt";
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "re");
		char *p;
		long sz;

		if (!f) {
			if (i == 0)
				continue; /* no system bundle: only the configured CA */
			return err_set(e, ERR_USAGE, "registry_ca_file %s: cannot open", files[i]);
		}
		if (fseek(f, 0, SEEK_END) < 0 || (sz = ftell(f)) < 0 || sz > (8L << 20) ||
		    fseek(f, 0, SEEK_SET) < 0) {
			fclose(f);
			return err_set(e, ERR_USAGE, "%s: cannot read (or larger than 8 MiB)", files[i]);
		}
		p = realloc(r->ca_data, len + (size_t)sz + 2);
		if (!p) {
			fclose(f);
			return err_set(e, ERR_FAILED, "out of memory");
		}
		r->ca_data = p;
		len += fread(p + len, 1, (size_t)sz, f);
		p[len++] = '\n';
		fclose(f);
	}
	r->ca_blob.data = r->ca_data;
	r->ca_blob.len = len;
	r->ca_blob.flags = CURL_BLOB_NOCOPY;
	return 0;
}

int registry_new(struct registry **ret, const struct refit_config *cfg, struct refit_err *e)
{
	struct registry *r = calloc(1, sizeof(*r));

	if (!r || !(r->multi = curl_multi_init())) {
		free(r);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	r->cfg = cfg;
	curl_multi_setopt(r->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, cfg->concurrency);
	curl_multi_setopt(r->multi, CURLMOPT_MAXCONNECTS, cfg->concurrency);
	if (cfg->registry_ca_file && load_ca_blob(r, e) < 0) {
		registry_free(r);
		return -1;
	}
	*ret = r;
	return 0;
}

void registry_remember(struct registry *r, char *const *refs, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n && i < REGISTRY_REMEMBER_MAX; i++)
		json_array_append_new(a, json_string(refs[i]));
	json_decref(r->remembered);
	r->remembered = a;
}

json_t *registry_remembered(struct registry *r)
{
	return r->remembered ? json_copy(r->remembered) : NULL;
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	json_decref(r->remembered);
	while (r->hosts) {
		struct host *h = r->hosts;

		r->hosts = h->next;
		free(h->name);
		free(h->endpoint);
		challenge_free(&h->ch);
		cred_free(&h->cred);
		free(h);
	}
	while (r->tokens) {
		struct token *t = r->tokens;

		r->tokens = t->next;
		free(t->key);
		if (t->value)
			explicit_bzero(t->value, strlen(t->value));
		free(t->value);
		free(t);
	}
	curl_multi_cleanup(r->multi);
	free(r->ca_data);
	free(r);
}

const struct registry_stats *registry_stats(const struct registry *r)
{
	return &r->stats;
}

/*
 * Start a transfer of URL for TARGET on behalf of host H; HDRS and POST are
 * taken over. H's TLS exception (insecure_registries) applies only when URL
 * is on H itself.
 */
static int xfer_start(struct registry *r, enum xfer_kind kind, void *target, struct host *h,
		      const char *url, bool head, struct curl_slist *hdrs, char *post, size_t max_body)
{
	size_t elen = strlen(h->endpoint);
	const char *hp = strstr(url, "://");
	bool on_host = hp && strncmp(hp + 3, h->endpoint, elen) == 0 && strchr("/:?", hp[3 + elen]);
	struct xfer *x = calloc(1, sizeof(*x));
	CURL *c = curl_easy_init();
	struct curl_slist *nh;

	if (!x || !c)
		goto fail;
	nh = curl_slist_append(hdrs, refit_user_agent_header);
	if (!nh)
		goto fail;
	hdrs = nh;
	x->easy = c;
	x->kind = kind;
	x->target = target;
	x->host = h;
	x->hdrs = hdrs;
	x->post = post;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PRIVATE, x);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, r->cfg->registry_timeout);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
			 r->cfg->registry_timeout < CONNECT_TIMEOUT ? r->cfg->registry_timeout : CONNECT_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_NOBODY, head ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	if (post)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
	if (h->no_verify && on_host) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (r->ca_data)
		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &r->ca_blob);
	http_attach(c, &x->resp, max_body);
	if (curl_multi_add_handle(r->multi, c) != CURLM_OK)
		goto fail;
	r->active++;
	return 0;
fail:
	if (c)
		curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	free(post);
	free(x);
	return -1;
}

/* Mark JOB finished with an error. */
static void job_fail(struct job *j, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void job_fail(struct job *j, int kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(j->q->error, sizeof(j->q->error), fmt, ap);
	va_end(ap);
	j->q->err_kind = kind;
	j->state = J_DONE;
}

/* Look up HOST's credentials once; a broken source fails the host. */
static void host_load_cred(struct registry *r, struct host *h)
{
	struct refit_err e = { 0 };
	int rc;

	if (h->cred_state != 0)
		return;
	rc = auth_lookup(r->cfg, h->name, &h->cred, &e);
	h->cred_state = rc < 0 ? -1 : rc == 1 ? 1 : 2;
	if (rc < 0) {
		h->state = H_FAILED;
		h->err_kind = ERR_FAILED;
		snprintf(h->err, sizeof(h->err), "credentials for %.60s: %.170s", h->name, e.msg);
	}
}

/* Base URL "https://endpoint" of HOST. */
static void host_url(const struct host *h, char *buf, size_t size, const char *path)
{
	snprintf(buf, size, "%s://%s%s", h->https ? "https" : "http", h->endpoint, path);
}

/* GET /v2/ to learn the scheme and the challenge. */
static void ping_start(struct registry *r, struct host *h)
{
	char url[512];

	host_url(h, url, sizeof(url), "/v2/");
	if (xfer_start(r, X_PING, h, h, url, false, NULL, NULL, MAX_SMALL_BODY) < 0) {
		h->state = H_FAILED;
		snprintf(h->err, sizeof(h->err), "out of memory");
		h->err_kind = ERR_FAILED;
		return;
	}
	r->stats.ping++;
	h->state = H_PINGING;
}

/* Is a realm URL safe to send credentials to? */
static bool realm_ok(struct registry *r, const char *realm)
{
	char hostport[256];
	const char *p;
	size_t n;

	if (strncasecmp(realm, "https://", 8) == 0)
		return true;
	if (strncasecmp(realm, "http://", 7) != 0)
		return false;
	p = realm + 7;
	n = strcspn(p, "/?#");
	if (n >= sizeof(hostport))
		return false;
	memcpy(hostport, p, n);
	hostport[n] = '\0';
	return is_loopback(hostport) || is_insecure(r->cfg, hostport);
}

/*
 * The scope part of a token request for the members of REQ: "&scope=A&scope=B"
 * (GET), or "A B" escaped for a POST form's one scope field; malloc'd.
 */
static char *token_scopes(CURL *esc, const struct token_req *q, bool form)
{
	char *out = NULL;
	size_t len = 0, cap = 0;

	for (size_t i = 0; i < q->n; i++) {
		char *one = curl_easy_escape(esc, q->m[i]->scope, 0);
		size_t need;

		if (!one || buf_reserve(&out, &cap, len + strlen(one) + 10, 256) < 0) {
			curl_free(one);
			free(out);
			return NULL;
		}
		need = (size_t)snprintf(out + len, cap - len, "%s%s", form ? (i ? "%20" : "") : "&scope=", one);
		len += need;
		curl_free(one);
	}
	return out ? out : strdup("");
}

/* Fetch a bearer token for the scopes of REQ's members (taken over: freed here or when the answer came). */
static void token_start(struct registry *r, struct host *h, struct token_req *q)
{
	const char *realm = h->ch.realm;
	char *svc = NULL, *scope = NULL, *url = NULL, *post = NULL, err[256] = "";
	struct curl_slist *hdrs = NULL;
	CURL *esc = curl_easy_init();

	if (!realm || !realm_ok(r, realm)) {
		snprintf(err, sizeof(err), "token realm \"%.100s\" is not an https URL (or plain http on loopback)",
			 realm ? realm : "");
		goto out;
	}
	if (!esc)
		goto oom;
	svc = curl_easy_escape(esc, h->ch.service ? h->ch.service : "", 0);
	scope = token_scopes(esc, q, h->cred_state == 1 && h->cred.identity_token);
	if (!svc || !scope)
		goto oom;
	if (h->cred_state == 1 && h->cred.identity_token) {
		/* OAuth refresh token from `docker login`: POST form, the scopes space-separated in one field. */
		char *rt = curl_easy_escape(esc, h->cred.identity_token, 0);

		if (!rt || asprintf(&post, "grant_type=refresh_token&client_id=refit&service=%s&scope=%s&refresh_token=%s",
				    svc, scope, rt) < 0) {
			post = NULL;
			curl_free(rt);
			goto oom;
		}
		curl_free(rt);
		if (asprintf(&url, "%s", realm) < 0)
			url = NULL;
	} else if (asprintf(&url, "%s%cservice=%s%s", realm, strchr(realm, '?') ? '&' : '?', svc, scope) < 0) {
		url = NULL;
	}
	if (!url)
		goto oom;
	if (h->cred_state == 1 && !h->cred.identity_token) {
		char *b = auth_basic(h->cred.username, h->cred.password), *line = NULL;

		if (!b || asprintf(&line, "Authorization: Basic %s", b) < 0)
			line = NULL;
		if (b)
			explicit_bzero(b, strlen(b));
		free(b);
		if (!line)
			goto oom;
		hdrs = curl_slist_append(NULL, line);
		explicit_bzero(line, strlen(line));
		free(line);
		if (!hdrs)
			goto oom;
	}
	if (xfer_start(r, X_TOKEN, q, h, url, false, hdrs, post, AUTH_MAX_TOKEN_BODY) < 0) {
		post = NULL;
		goto oom;
	}
	post = NULL;
	r->stats.token++;
	if (q->n > 1)
		log_debug("registry %s: one token request for %zu repositories", h->name, q->n);
	for (size_t i = 0; i < q->n; i++)
		q->m[i]->state = T_FETCHING;
	q = NULL;
	goto out;
oom:
	snprintf(err, sizeof(err), "out of memory");
out:
	for (size_t i = 0; q && i < q->n; i++) {
		q->m[i]->state = T_FAILED;
		q->m[i]->err_kind = ERR_FAILED;
		snprintf(q->m[i]->err, sizeof(q->m[i]->err), "%s", err);
	}
	free(q);
	free(post);
	free(url);
	curl_free(svc);
	free(scope);
	if (esc)
		curl_easy_cleanup(esc);
}

/* The Authorization header line JOB's requests carry (or a harmless one), malloc'd; NULL when out of memory. */
static char *job_auth(const struct job *j)
{
	const struct host *h = j->host;
	char *auth = NULL;

	if (h->ch.scheme == CHALLENGE_BEARER && j->tok && j->tok->value) {
		if (asprintf(&auth, "Authorization: Bearer %s", j->tok->value) < 0)
			auth = NULL;
	} else if (h->ch.scheme == CHALLENGE_BASIC && h->cred_state == 1 && h->cred.password) {
		char *b = auth_basic(h->cred.username, h->cred.password);

		if (!b || asprintf(&auth, "Authorization: Basic %s", b) < 0)
			auth = NULL;
		if (b)
			explicit_bzero(b, strlen(b));
		free(b);
	} else {
		auth = strdup("X-Refit: anonymous");
	}
	return auth;
}

/*
 * Send JOB's request to URL with HDRS (taken over) and its Authorization
 * header, counted in *COUNT; the header's secret is wiped afterwards.
 */
static void job_send(struct registry *r, struct job *j, enum xfer_kind kind, const char *url,
		     struct curl_slist *hdrs, bool head, size_t max, unsigned long *count)
{
	struct curl_slist *nh = NULL;
	char *auth = hdrs ? job_auth(j) : NULL;

	if (!auth || !(nh = curl_slist_append(hdrs, auth)) ||
	    xfer_start(r, kind, j, j->host, url, head, nh, NULL, max) < 0) {
		if (!nh)
			curl_slist_free_all(hdrs);
		job_fail(j, ERR_FAILED, "out of memory");
	} else {
		(*count)++;
		j->state = J_ACTIVE;
	}
	if (auth)
		explicit_bzero(auth, strlen(auth));
	free(auth);
}

/* HEAD (or GET) the manifest of JOB's reference. */
static void manifest_start(struct registry *r, struct job *j)
{
	const struct imageref *ref = j->q->ref;
	struct host *h = j->host;
	struct curl_slist *hdrs = curl_slist_append(NULL, MANIFEST_ACCEPT);
	char path[2048], url[2600];

	snprintf(path, sizeof(path), "/v2/%s/manifests/%s", ref->path, ref->digest ? ref->digest : ref->tag);
	host_url(h, url, sizeof(url), path);
	job_send(r, j, X_MANIFEST, url, hdrs, !j->want_get, j->want_get ? REGISTRY_MAX_MANIFEST : MAX_SMALL_BODY,
		 &r->stats.manifest);
}

/* GET the next page of JOB's tag listing: the first, or where the last page's Link pointed. */
static void tags_start(struct registry *r, struct job *j)
{
	struct host *h = j->host;
	struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
	char url[2600], base[600];

	host_url(h, base, sizeof(base), "/");
	if (!j->next) {
		char path[1200];

		snprintf(path, sizeof(path), "/v2/%s/tags/list?n=%ld", j->q->ref->path, r->cfg->registry_page_size);
		host_url(h, url, sizeof(url), path);
	} else if (j->next[0] == '/') {
		host_url(h, url, sizeof(url), j->next);
	} else if (strncasecmp(j->next, base, strlen(base)) == 0) {
		snprintf(url, sizeof(url), "%s", j->next);
	} else {
		curl_slist_free_all(hdrs);
		job_fail(j, ERR_FAILED, "registry %s: the tag list's next page is on another host (%.100s)", h->name,
			 j->next);
		return;
	}
	job_send(r, j, X_TAGS, url, hdrs, false, TAGS_MAX_BODY, &r->stats.tags);
}

/* JOB's token slot (found or added), a token past its time made new again; -1 when out of memory (JOB failed). */
static int job_token(struct registry *r, struct job *j)
{
	struct host *h = j->host;

	if (!j->tok) {
		char key[1024];

		snprintf(key, sizeof(key), "%s %s %s", h->ch.realm ? h->ch.realm : "", h->ch.service ? h->ch.service : "",
			 j->scope);
		j->tok = token_get(r, key);
		if (!j->tok) {
			job_fail(j, ERR_FAILED, "out of memory");
			return -1;
		}
	}
	if (j->tok->state == T_READY && j->tok->expires_ms <= mono_ms()) {
		j->tok->state = T_NEW;
		free(j->tok->value);
		j->tok->value = NULL;
	}
	return 0;
}

/* Length of S once percent-encoded. */
static size_t escaped_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~", *s) ? 1 : 3;
	return n;
}

/*
 * Ask a token for JOB's scope and, in the same request, for the scopes of
 * every other job of this run on the same host that needs one too, as far
 * as the URL stays under REGISTRY_TOKEN_URL_MAX (the rest go in the next
 * request). A registry that refused such a request, or a scope one did not
 * grant, is asked one scope at a time.
 */
static void token_request(struct registry *r, struct job *j)
{
	struct host *h = j->host;
	struct token_req *q = calloc(1, sizeof(*q));
	size_t len = (h->ch.realm ? strlen(h->ch.realm) : 0) + escaped_len(h->ch.service ? h->ch.service : "") + 16;

	if (!q) {
		j->tok->state = T_FAILED;
		j->tok->err_kind = ERR_FAILED;
		snprintf(j->tok->err, sizeof(j->tok->err), "out of memory");
		return;
	}
	q->m[q->n++] = j->tok;
	len += 7 + escaped_len(j->tok->scope);
	for (size_t i = 0; i < r->njobs && !j->tok->solo && !h->single_scope && q->n < REGISTRY_TOKEN_SCOPES; i++) {
		struct job *k = &r->jobs[i];
		size_t more;
		bool dup = false;

		if (k == j || k->state != J_WAIT || k->host != h || job_token(r, k) < 0 || k->tok->state != T_NEW ||
		    k->tok->solo)
			continue;
		for (size_t m = 0; m < q->n && !dup; m++)
			dup = q->m[m] == k->tok;
		more = 7 + escaped_len(k->tok->scope);
		if (dup || len + more > REGISTRY_TOKEN_URL_MAX)
			continue;
		q->m[q->n++] = k->tok;
		len += more;
	}
	token_start(r, h, q);
}

/* Move JOB forward as far as its host and token allow. */
static void job_step(struct registry *r, struct job *j)
{
	struct host *h = j->host;

	if (j->state != J_WAIT || (j->not_before && mono_ms() < j->not_before))
		return;
	switch (h->state) {
	case H_NEW:
		ping_start(r, h);
		return;
	case H_PINGING:
		return;
	case H_FAILED:
		job_fail(j, h->err_kind, "%s", h->err);
		return;
	case H_READY:
		break;
	}
	if (h->ch.scheme != CHALLENGE_NONE)
		host_load_cred(r, h);
	if (h->state == H_FAILED) {
		job_fail(j, h->err_kind, "%s", h->err);
		return;
	}
	if (h->ch.scheme == CHALLENGE_BEARER) {
		if (job_token(r, j) < 0)
			return;
		switch (j->tok->state) {
		case T_NEW:
			token_request(r, j);
			if (j->tok->state == T_FAILED)
				job_fail(j, j->tok->err_kind, "%s", j->tok->err);
			return;
		case T_FETCHING:
			return;
		case T_FAILED:
			job_fail(j, j->tok->err_kind, "%s", j->tok->err);
			return;
		case T_READY:
			break;
		}
	}
	if (j->tq)
		tags_start(r, j);
	else
		manifest_start(r, j);
}

/* Describe a curl failure and classify it. */
static int xfer_error(CURLcode rc, struct xfer *x, char *buf, size_t size)
{
	snprintf(buf, size, "%s", http_strerror(rc, &x->resp, x->errbuf));
	return !x->resp.too_large && http_unreachable(rc) ? ERR_UNREACHABLE : ERR_FAILED;
}

/* Is RC what curl says when TLS met a server speaking plain HTTP?  A
 * handshake that ran out of time after the TCP connection was made counts
 * too: it proves no TLS either (Docker also tries plain HTTP after any
 * failure of HTTPS on such a host), and on a host slowed down enough that
 * refit's own side of the handshake outlasts the connect timeout it would
 * otherwise make a plain HTTP registry unreachable. */
static bool tls_not_spoken(CURLcode rc, CURL *easy)
{
	long local_port = 0; /* curl knows it once the TCP connection is made */
	curl_off_t tls = 0;

	if (rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING)
		return true;
	if (rc != CURLE_OPERATION_TIMEDOUT ||
	    curl_easy_getinfo(easy, CURLINFO_LOCAL_PORT, &local_port) != CURLE_OK ||
	    curl_easy_getinfo(easy, CURLINFO_APPCONNECT_TIME_T, &tls) != CURLE_OK)
		return false;
	return local_port > 0 && tls == 0;
}

/* The /v2/ answer of a host arrived. */
static void ping_done(struct host *h, CURLcode rc, struct xfer *x)
{
	const char *wa;
	struct refit_err e = { 0 };
	char m[200];

	if (rc != CURLE_OK) {
		if (h->https && h->may_fallback && tls_not_spoken(rc, x->easy)) {
			h->https = false;
			h->state = H_NEW;
			return;
		}
		h->state = H_FAILED;
		h->err_kind = xfer_error(rc, x, m, sizeof(m));
		if (rc == CURLE_PEER_FAILED_VERIFICATION)
			h->err_kind = ERR_FAILED; /* it answered: the certificate is the problem */
		snprintf(h->err, sizeof(h->err), "registry %s: %s", h->name, m);
		return;
	}
	if (x->resp.status == 200) {
		h->state = H_READY;
		return;
	}
	wa = http_header(&x->resp, "WWW-Authenticate");
	if (x->resp.status == 401 && wa && challenge_parse(wa, &h->ch, &e) == 0) {
		h->state = H_READY;
		return;
	}
	h->state = H_FAILED;
	h->err_kind = ERR_FAILED;
	if (x->resp.status == 401)
		snprintf(h->err, sizeof(h->err), "registry %.60s: 401 with an unusable WWW-Authenticate: %.140s",
			 h->name, wa ? e.msg : "header missing");
	else
		snprintf(h->err, sizeof(h->err), "registry %s: /v2/ answered HTTP %ld (not a registry?)", h->name,
			 x->resp.status);
}

/* Every member of Q failed with KIND and MSG. */
static void token_req_fail(struct token_req *q, int kind, const char *msg)
{
	for (size_t i = 0; i < q->n; i++) {
		q->m[i]->state = T_FAILED;
		q->m[i]->err_kind = kind;
		snprintf(q->m[i]->err, sizeof(q->m[i]->err), "%s", msg);
	}
}

/* A token answer arrived for the members of Q (freed here). */
static void token_done(struct token_req *q, CURLcode rc, struct xfer *x, struct host *h)
{
	struct refit_err e = { 0 };
	long expires = 60;
	char *value = NULL, m[200], err[256];
	json_t *access;

	if (rc != CURLE_OK) {
		int kind = xfer_error(rc, x, m, sizeof(m));

		snprintf(err, sizeof(err), "token from %s: %s", h->name, m);
		token_req_fail(q, kind, err);
		goto out;
	}
	if (x->resp.status != 200 ||
	    auth_token_parse(x->resp.body ? x->resp.body : "", x->resp.len, &value, &expires, &e) < 0) {
		if (q->n > 1) {
			/* several scopes at once refused: each is asked alone, which tells the real error */
			log_debug("registry %s: a token request for %zu repositories was refused (HTTP %ld): one per repository from now on",
				  h->name, q->n, x->resp.status);
			h->single_scope = true;
			for (size_t i = 0; i < q->n; i++) {
				q->m[i]->state = T_NEW;
				q->m[i]->solo = true;
			}
		} else if (x->resp.status == 401 || x->resp.status == 403) {
			snprintf(err, sizeof(err), "token from %s: %ld unauthorized (%s)", h->name, x->resp.status,
				 h->cred_state == 1 ? "credentials rejected" : "no credentials found for this registry");
			token_req_fail(q, ERR_FAILED, err);
		} else if (x->resp.status != 200) {
			snprintf(err, sizeof(err), "token from %s: HTTP %ld", h->name, x->resp.status);
			token_req_fail(q, ERR_FAILED, err);
		} else {
			snprintf(err, sizeof(err), "token from %.60s: %.170s", h->name, e.msg);
			token_req_fail(q, ERR_FAILED, err);
		}
		goto out;
	}
	access = q->n > 1 ? auth_token_access(value) : NULL;
	for (size_t i = 0; i < q->n; i++) {
		struct token *t = q->m[i];

		if (q->n > 1 && auth_access_grants(access, t->scope) == 0) {
			/* a JWT whose access claim leaves this repository out: asked alone */
			log_debug("registry %s: the token for %zu repositories does not grant %s: asking for it alone",
				  h->name, q->n, t->scope);
			t->state = T_NEW;
			t->solo = true;
			continue;
		}
		if (t->value)
			explicit_bzero(t->value, strlen(t->value));
		free(t->value);
		t->value = strdup(value);
		if (!t->value) {
			t->state = T_FAILED;
			t->err_kind = ERR_FAILED;
			snprintf(t->err, sizeof(t->err), "out of memory");
			continue;
		}
		/* Renew a little early so a token never expires in flight. */
		t->expires_ms = mono_ms() + expires * 1000 - (expires > 20 ? 10000 : expires * 500);
		t->state = T_READY;
	}
	json_decref(access);
	explicit_bzero(value, strlen(value));
	free(value);
out:
	free(q);
}

/* Is BODY what a registry serves as a manifest or index: a JSON object with schemaVersion 1 or 2? */
bool registry_manifest_shaped(const char *body, size_t len)
{
	json_t *m = json_loadb(body, len, 0, NULL);
	json_int_t v = json_integer_value(json_object_get(m, "schemaVersion"));

	json_decref(m);
	return v == 1 || v == 2;
}

/* SHA-256 of a body as "sha256:<hex>". */
static void sha256_digest(const char *body, size_t len, char out[72])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(body, len, md, &mdlen, EVP_sha256(), NULL);
	memcpy(out, "sha256:", 7);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/*
 * A 401 answer to job J: once per job, take the repository's own challenge
 * (when /v2/ was open but this repository is not) or fetch a fresh token
 * (the cached one may have been revoked or cut short). True when the job
 * should be tried again.
 */
static bool job_reauth(struct job *j, struct xfer *x)
{
	struct host *h = j->host;
	const char *wa = http_header(&x->resp, "WWW-Authenticate");
	struct challenge c = { 0 };

	if (j->auth_retries > 0)
		return false;
	j->auth_retries++;
	if (h->ch.scheme == CHALLENGE_NONE && wa && challenge_parse(wa, &c, NULL) == 0) {
		h->ch = c;
		return true;
	}
	challenge_free(&c);
	if (j->tok && j->tok->state == T_READY) {
		j->tok->state = T_NEW;
		j->tok->solo = true; /* a token for several repositories may not have been good for this one */
		return true;
	}
	return false;
}

/*
 * JOB's answer arrived: put it back to waiting, and when the failure may
 * pass (a cut connection, a 5xx, a 429) schedule another try after a pause,
 * Retry-After when given; true when it will be tried again.
 */
static bool job_retry_later(struct job *j, CURLcode rc, struct xfer *x)
{
	long st = x->resp.status, wait = 1L << j->retries;
	const char *ra;

	j->state = J_WAIT;
	j->not_before = 0;
	if (!(rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING ||
	      (rc == CURLE_OK && (st >= 500 || st == 429))) || j->retries >= MANIFEST_RETRIES)
		return false;
	ra = rc == CURLE_OK ? http_header(&x->resp, "Retry-After") : NULL;
	if (ra && *ra >= '0' && *ra <= '9')
		wait = strtol(ra, NULL, 10);
	if (wait > MAX_RETRY_AFTER)
		return false;
	j->retries++;
	j->not_before = mono_ms() + 1000LL * (wait > 0 ? wait : 0);
	log_debug("registry %s: %s; trying again in %ld s", j->host->name,
		  rc != CURLE_OK ? "connection cut" : st == 429 ? "429 too many requests" : "server error", wait);
	return true;
}

/* A manifest answer arrived. */
static void manifest_done(struct registry *r, struct job *j, CURLcode rc, struct xfer *x)
{
	const char *dcd = http_header(&x->resp, "Docker-Content-Digest");
	long st = x->resp.status;
	struct host *h = j->host;

	if (job_retry_later(j, rc, x))
		return;
	if (rc != CURLE_OK) {
		char m[200];
		int kind = xfer_error(rc, x, m, sizeof(m));

		job_fail(j, kind, "registry %s: %s", h->name, m);
		return;
	}
	if (st == 200 && !j->want_get) {
		if (dcd && registry_digest_valid(dcd)) {
			j->q->digest = strdup(dcd);
			if (!j->q->digest)
				job_fail(j, ERR_FAILED, "out of memory");
			j->state = J_DONE;
			return;
		}
		j->want_get = true; /* no usable digest header: hash the body */
		return;
	}
	if (st == 200) {
		char d[72];

		if (!x->resp.body || x->resp.len == 0) {
			job_fail(j, ERR_FAILED, "registry %s: empty manifest", h->name);
			return;
		}
		sha256_digest(x->resp.body, x->resp.len, d);
		if (dcd && strncmp(dcd, "sha256:", 7) == 0 && strcmp(dcd, d) != 0) {
			job_fail(j, ERR_FAILED, "registry %s: Docker-Content-Digest %.80s does not match the manifest (%s)",
				 h->name, dcd, d);
			return;
		}
		if (!registry_manifest_shaped(x->resp.body, x->resp.len)) {
			job_fail(j, ERR_FAILED, "registry %s: the answer is not a manifest (not JSON with a schemaVersion)",
				 h->name);
			return;
		}
		j->q->digest = strdup(d);
		if (!j->q->digest)
			job_fail(j, ERR_FAILED, "out of memory");
		j->state = J_DONE;
		return;
	}
	if (st == 401 && job_reauth(j, x))
		return;
	if (st == 401)
		job_fail(j, ERR_FAILED, "registry %s: 401 unauthorized (%s)", h->name,
			 h->cred_state == 1 ? "credentials rejected" : "no credentials found for this registry");
	else if (st == 404)
		job_fail(j, ERR_FAILED, "registry %s: 404 manifest unknown (no such repository or tag)", h->name);
	else if (st == 403)
		job_fail(j, ERR_FAILED, "registry %s: 403 denied", h->name);
	else if (st == 429)
		job_fail(j, ERR_FAILED, "registry %s: 429 too many requests%s", h->name,
			 j->retries ? " (after retrying)" : " (Retry-After too long to wait)");
	else
		job_fail(j, ERR_FAILED, "registry %s: HTTP %ld%s", h->name, st, j->retries ? " (after retrying)" : "");
	(void)r;
}

/* A page of a tag listing arrived. */
static void tags_done(struct registry *r, struct job *j, CURLcode rc, struct xfer *x)
{
	long st = x->resp.status;
	struct host *h = j->host;
	struct refit_err te = { 0 };
	char err[300], *next = NULL;

	if (job_retry_later(j, rc, x))
		return;
	if (rc != CURLE_OK) {
		int kind = xfer_error(rc, x, err, sizeof(err));

		job_fail(j, kind, "registry %s: tags of %s: %s", h->name, j->q->ref->path, err);
		return;
	}
	if (st == 401 && job_reauth(j, x))
		return;
	if (st != 200) {
		job_fail(j, ERR_FAILED, "registry %s: tags of %s: HTTP %ld%s", h->name, j->q->ref->path, st,
			 st == 404 ? " (no such repository)" : st == 401 ? " unauthorized" : "");
		return;
	}
	if (tags_parse_body(x->resp.body, x->resp.len, &j->tq->tags, &te) < 0 ||
	    tags_parse_link(http_header(&x->resp, "Link"), &next, &te) < 0) {
		job_fail(j, ERR_FAILED, "registry %s: tags of %s: %s", h->name, j->q->ref->path, te.msg);
		return;
	}
	j->tq->pages++;
	j->retries = 0;
	free(j->next);
	j->next = next;
	if (next && !j->tq->tags.truncated && j->tq->pages < TAGS_MAX_PAGES)
		return; /* the next page */
	if (next)
		j->tq->tags.truncated = true;
	if (j->tq->tags.truncated)
		log_warn("registry %s: %s has more tags than refit reads (%d tags, %d pages): using the first %zu",
			 h->name, j->q->ref->path, TAGS_MAX_TOTAL, TAGS_MAX_PAGES, j->tq->tags.n);
	j->state = J_DONE;
	(void)r;
}

/* Collect finished transfers and hand their answers on. */
static void reap(struct registry *r)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(r->multi, &left))) {
		struct xfer *x = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &x->resp.status);
		switch (x->kind) {
		case X_PING:
			ping_done(x->target, m->data.result, x);
			break;
		case X_TOKEN:
			token_done(x->target, m->data.result, x, x->host);
			break;
		case X_MANIFEST:
			manifest_done(r, x->target, m->data.result, x);
			break;
		case X_TAGS:
			tags_done(r, x->target, m->data.result, x);
			break;
		}
		curl_multi_remove_handle(r->multi, m->easy_handle);
		curl_easy_cleanup(m->easy_handle);
		curl_slist_free_all(x->hdrs);
		http_response_free(&x->resp);
		free(x->post);
		free(x);
		r->active--;
	}
}

/* Drive JOBS to completion: hosts, tokens, then their requests, up to cfg->concurrency at once. */
static void run_jobs(struct registry *r, struct job *jobs, size_t n)
{
	size_t done = 0;

	r->jobs = jobs;
	r->njobs = n;
	/* A host that failed in an earlier pass gets another chance. */
	for (struct host *h = r->hosts; h; h = h->next)
		if (h->state == H_FAILED || h->state == H_PINGING) {
			h->state = H_NEW;
			h->https = true;
		}
	for (struct token *t = r->tokens; t; t = t->next)
		if (t->state == T_FAILED || t->state == T_FETCHING)
			t->state = T_NEW;

	while (done < n) {
		int running = 0;

		done = 0;
		for (size_t i = 0; i < n; i++) {
			if (jobs[i].state == J_WAIT && r->active < (unsigned)r->cfg->concurrency)
				job_step(r, &jobs[i]);
			done += jobs[i].state == J_DONE;
		}
		if (done == n)
			break;
		if (r->active == 0) {
			/* A step changed state without a transfer: step again, after any retry pause. */
			long long now = mono_ms(), soon = 0;

			for (size_t i = 0; i < n; i++)
				if (jobs[i].state == J_WAIT && jobs[i].not_before > now &&
				    (!soon || jobs[i].not_before < soon))
					soon = jobs[i].not_before;
			if (soon)
				usleep((useconds_t)((soon - now > 1000 ? 1000 : soon - now) * 1000));
			continue;
		}
		curl_multi_perform(r->multi, &running);
		reap(r);
		if (r->active > 0 && curl_multi_poll(r->multi, NULL, 0, 1000, NULL) != CURLM_OK)
			break;
	}
	for (size_t i = 0; i < n; i++) {
		free(jobs[i].scope);
		free(jobs[i].next);
	}
	r->jobs = NULL;
	r->njobs = 0;
}

/* Set up JOB for query Q: its host and token scope. */
static void job_init(struct registry *r, struct job *j, struct digest_query *q)
{
	j->q = q;
	j->host = host_get(r, q->ref);
	if (asprintf(&j->scope, "repository:%s:pull", q->ref->path) < 0)
		j->scope = NULL;
	if (!j->host || !j->scope)
		job_fail(j, ERR_FAILED, "out of memory");
}

void registry_resolve(struct registry *r, struct digest_query *q, size_t n)
{
	struct job *jobs = calloc(n ? n : 1, sizeof(*jobs));

	for (size_t i = 0; i < n; i++) {
		q[i].digest = NULL;
		q[i].err_kind = ERR_NONE;
		q[i].error[0] = '\0';
		if (!jobs) {
			snprintf(q[i].error, sizeof(q[i].error), "out of memory");
			q[i].err_kind = ERR_FAILED;
		}
	}
	if (!jobs)
		return;
	for (size_t i = 0; i < n; i++)
		job_init(r, &jobs[i], &q[i]);
	run_jobs(r, jobs, n);
	free(jobs);
}

void registry_list_tags(struct registry *r, struct tags_query *q, size_t n)
{
	struct job *jobs = calloc(n ? n : 1, sizeof(*jobs));

	for (size_t i = 0; i < n; i++) {
		memset(&q[i].tags, 0, sizeof(q[i].tags));
		q[i].pages = 0;
		q[i].dq.digest = NULL;
		q[i].dq.err_kind = jobs ? ERR_NONE : ERR_FAILED;
		snprintf(q[i].dq.error, sizeof(q[i].dq.error), "%s", jobs ? "" : "out of memory");
	}
	if (!jobs)
		return;
	for (size_t i = 0; i < n; i++) {
		jobs[i].tq = &q[i];
		job_init(r, &jobs[i], &q[i].dq);
	}
	run_jobs(r, jobs, n);
	free(jobs);
}
