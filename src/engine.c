/* Docker Engine API: connection, version negotiation and JSON requests. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "refit/base.h"
#include "refit/engine.h"
#include "refit/http.h"
#include "refit/waited.h"

#define ENGINE_MAX_BODY (64u << 20) /* a list of thousands of containers */
#define ENGINE_TIMEOUT 60L

struct engine {
	CURL *h;
	char *host;    /* as configured, for messages */
	char *base;    /* "http://localhost" or "https://host:port" */
	char *socket;  /* unix socket path or NULL */
	char *cert_dir; /* TLS client material or NULL */
	char api[16];
	char server_version[64];
	int containerd_store; /* 0 not asked yet, 1 the containerd image store, -1 not */
	char errbuf[CURL_ERROR_SIZE];
};

/* Parse "major.minor" (digits only, nothing after) into a comparable number; -1 when malformed. */
static long engine_version_num(const char *v)
{
	long part[2] = { 0, 0 };

	for (int i = 0; i < 2; i++) {
		const char *start = v;

		while (*v >= '0' && *v <= '9' && v - start < 4)
			part[i] = part[i] * 10 + (*v++ - '0');
		if (v == start || *v != (i == 0 ? '.' : '\0'))
			return -1;
		v++;
	}
	return part[0] * 10000 + part[1];
}

/* Split DOCKER_HOST into base URL and socket path. */
static int engine_parse_host(struct engine *en, const char *host, struct refit_err *e)
{
	if (strncmp(host, "unix://", 7) == 0) {
		if (host[7] != '/' || strlen(host) > 7 + 107)
			return err_set(e, ERR_USAGE, "docker_host %s: expected unix:///absolute/path", host);
		en->socket = strdup(host + 7);
		en->base = strdup("http://localhost");
	} else if (strncmp(host, "tcp://", 6) == 0 || strncmp(host, "http://", 7) == 0 ||
		   strncmp(host, "https://", 8) == 0) {
		const char *hp = strstr(host, "://") + 3;
		const char *tls = getenv("DOCKER_TLS_VERIFY");
		bool use_tls = strncmp(host, "https://", 8) == 0 || (tls && *tls);
		size_t n = strcspn(hp, "/");

		if (n == 0 || n > 255)
			return err_set(e, ERR_USAGE, "docker_host %s: missing host", host);
		if (asprintf(&en->base, "%s://%.*s", use_tls ? "https" : "http", (int)n, hp) < 0)
			en->base = NULL;
		if (use_tls) {
			const char *dir = getenv("DOCKER_CERT_PATH");
			const char *home = getenv("HOME");

			if (dir && *dir)
				en->cert_dir = strdup(dir);
			else if (asprintf(&en->cert_dir, "%s/.docker", home ? home : "/root") < 0)
				en->cert_dir = NULL;
			if (!en->cert_dir)
				return err_set(e, ERR_FAILED, "out of memory");
		}
	} else {
		return err_set(e, ERR_USAGE, "docker_host %s: expected unix:// or tcp://", host);
	}
	if (!en->base || (strncmp(host, "unix://", 7) == 0 && !en->socket))
		return err_set(e, ERR_FAILED, "out of memory");
	return 0;
}

/* Set the options every request shares. */
static void engine_setup(struct engine *en)
{
	curl_easy_setopt(en->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(en->h, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(en->h, CURLOPT_TIMEOUT, ENGINE_TIMEOUT);
	curl_easy_setopt(en->h, CURLOPT_ERRORBUFFER, en->errbuf);
	curl_easy_setopt(en->h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (en->socket)
		curl_easy_setopt(en->h, CURLOPT_UNIX_SOCKET_PATH, en->socket);
	if (en->cert_dir) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/ca.pem", en->cert_dir);
		curl_easy_setopt(en->h, CURLOPT_CAINFO, path);
		snprintf(path, sizeof(path), "%s/cert.pem", en->cert_dir);
		curl_easy_setopt(en->h, CURLOPT_SSLCERT, path);
		snprintf(path, sizeof(path), "%s/key.pem", en->cert_dir);
		curl_easy_setopt(en->h, CURLOPT_SSLKEY, path);
	}
}

/* Classify a failed transfer: nothing answered, or something else went wrong. */
static int engine_fail(struct engine *en, CURLcode rc, const struct http_response *r, struct refit_err *e)
{
	int kind = !r->too_large && (http_unreachable(rc) || rc == CURLE_SSL_CONNECT_ERROR ||
				     rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING) ?
			   ERR_UNREACHABLE : ERR_FAILED;

	long os_errno = 0;

	curl_easy_getinfo(en->h, CURLINFO_OS_ERRNO, &os_errno);
	if (en->socket && rc == CURLE_COULDNT_CONNECT && os_errno)
		return err_set(e, kind, "cannot reach the Docker engine at %s: %s", en->host, strerror((int)os_errno));
	return err_set(e, kind, "cannot reach the Docker engine at %s: %s", en->host,
		       http_strerror(rc, r, en->errbuf));
}

/*
 * METHOD URL_PATH (already versioned) with an optional JSON BODY, waiting
 * at most TIMEOUT seconds. The answer, when RET is non-NULL and the body is
 * not empty, is parsed as JSON. Statuses of 400 and up are ERR_FAILED with
 * the engine's message; *STATUS (when non-NULL) gets the status either way.
 */
static int engine_request(struct engine *en, const char *method, const char *url_path, json_t *body,
			  const char *registry_auth, long timeout, json_t **ret, long *status, struct refit_err *e)
{
	struct http_response r = { 0 };
	struct curl_slist *hdrs = NULL;
	char url[4096], *payload = NULL;
	json_error_t jerr;
	json_t *j = NULL;
	struct timespec t0;
	CURLcode rc;

	if (ret)
		*ret = NULL;
	if ((size_t)snprintf(url, sizeof(url), "%s%s", en->base, url_path) >= sizeof(url))
		return err_set(e, ERR_FAILED, "engine request path too long");
	en->errbuf[0] = '\0';
	curl_easy_setopt(en->h, CURLOPT_URL, url);
	curl_easy_setopt(en->h, CURLOPT_TIMEOUT, timeout);
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(en->h, CURLOPT_HTTPGET, 1L);
	} else {
		char *auth_hdr = NULL;
		bool ok;

		payload = body ? json_dumps(body, JSON_COMPACT) : strdup("");
		hdrs = curl_slist_append(NULL, "Content-Type: application/json");
		if (registry_auth && asprintf(&auth_hdr, "X-Registry-Auth: %s", registry_auth) < 0)
			auth_hdr = NULL;
		ok = payload && hdrs && (!registry_auth || (auth_hdr && curl_slist_append(hdrs, auth_hdr)));
		if (auth_hdr)
			explicit_bzero(auth_hdr, strlen(auth_hdr));
		free(auth_hdr);
		if (!ok) {
			free(payload);
			curl_slist_free_all(hdrs);
			return err_set(e, ERR_FAILED, "out of memory");
		}
		curl_easy_setopt(en->h, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(en->h, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(en->h, CURLOPT_HTTPHEADER, hdrs);
	}
	http_attach(en->h, &r, ENGINE_MAX_BODY);
	waited_start(&t0);
	rc = curl_easy_perform(en->h);
	waited_stop(&t0);
	/* Leave the handle as a plain GET for the next request. */
	curl_easy_setopt(en->h, CURLOPT_CUSTOMREQUEST, NULL);
	curl_easy_setopt(en->h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(en->h, CURLOPT_POSTFIELDS, NULL);
	for (struct curl_slist *h = hdrs; h; h = h->next) /* the credentials are gone with the request */
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(hdrs);
	free(payload);
	if (rc != CURLE_OK) {
		engine_fail(en, rc, &r, e);
		http_response_free(&r);
		return -1;
	}
	curl_easy_getinfo(en->h, CURLINFO_RESPONSE_CODE, &r.status);
	if (status)
		*status = r.status;
	if (r.len > 0)
		j = json_loadb(r.body, r.len, JSON_DECODE_ANY, &jerr);
	if (r.status >= 400) {
		const char *m = json_string_value(json_object_get(j, "message"));

		err_set(e, ERR_FAILED, "engine: %ld %s", r.status, m ? m : "error");
		json_decref(j);
		http_response_free(&r);
		return -1;
	}
	if (ret && r.len > 0 && !j) {
		http_response_free(&r);
		return err_set(e, ERR_FAILED, "engine: invalid JSON answer to %s %s: %s", method, url_path, jerr.text);
	}
	http_response_free(&r);
	if (ret)
		*ret = j;
	else
		json_decref(j);
	return 0;
}

int engine_negotiate(const char *api, const char *min_api, char *out, size_t outlen, struct refit_err *e)
{
	long have = api ? engine_version_num(api) : -1, floor = min_api ? engine_version_num(min_api) : -1;
	long lo = engine_version_num(ENGINE_API_MIN), hi = engine_version_num(ENGINE_API_MAX);

	if (have < 0)
		return err_set(e, ERR_FAILED, "/version has no usable ApiVersion");
	if (have < lo)
		return err_set(e, ERR_FAILED, "the engine speaks API %.20s; refit needs %s or newer", api,
			       ENGINE_API_MIN);
	if (floor > hi)
		return err_set(e, ERR_FAILED, "the engine accepts API %.20s and newer only; refit speaks up to %s",
			       min_api, ENGINE_API_MAX);
	if ((size_t)snprintf(out, outlen, "%s", have > hi ? ENGINE_API_MAX : api) >= outlen)
		return err_set(e, ERR_FAILED, "API version %.20s too long", api);
	return 0;
}

/* A new handle on DOCKER_HOST, its connection not made yet and its API version not known. */
static int engine_new(struct engine **ret, const char *docker_host, struct refit_err *e)
{
	struct engine *en = calloc(1, sizeof(*en));

	if (!en)
		return err_set(e, ERR_FAILED, "out of memory");
	if (!docker_host || !*docker_host)
		docker_host = "unix:///var/run/docker.sock";
	en->host = strdup(docker_host);
	en->h = curl_easy_init();
	if (!en->host || !en->h) {
		engine_close(en);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	if (engine_parse_host(en, docker_host, e) < 0) {
		engine_close(en);
		return -1;
	}
	engine_setup(en);
	*ret = en;
	return 0;
}

int engine_open(struct engine **ret, const char *docker_host, struct refit_err *e)
{
	struct engine *en;
	const char *server;
	json_t *v = NULL;

	if (engine_new(&en, docker_host, e) < 0)
		return -1;
	if (engine_request(en, "GET", "/version", NULL, NULL, ENGINE_TIMEOUT, &v, NULL, e) < 0) {
		engine_close(en);
		return -1;
	}
	/* The unversioned /version: every engine answers it whatever API it accepts. */
	if (engine_negotiate(json_string_value(json_object_get(v, "ApiVersion")),
			     json_string_value(json_object_get(v, "MinAPIVersion")), en->api, sizeof(en->api),
			     e) < 0) {
		err_prefix(e, "engine at %s: ", en->host);
		json_decref(v);
		engine_close(en);
		return -1;
	}
	server = json_string_value(json_object_get(v, "Version"));
	snprintf(en->server_version, sizeof(en->server_version), "%s", server ? server : "unknown");
	json_decref(v);
	*ret = en;
	return 0;
}

int engine_clone(struct engine **ret, const struct engine *like, struct refit_err *e)
{
	struct engine *en;

	if (engine_new(&en, like->host, e) < 0)
		return -1;
	memcpy(en->api, like->api, sizeof(en->api));
	memcpy(en->server_version, like->server_version, sizeof(en->server_version));
	en->containerd_store = like->containerd_store;
	*ret = en;
	return 0;
}

static void *engine_get_thread(void *arg)
{
	struct engine_get *g = arg;

	g->rc = engine_get_json(g->en, g->path, &g->ans, &g->e);
	return NULL;
}

void engine_get_start(struct engine_get *g, struct engine *like, const char *path)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->path, sizeof(g->path), "%s", path);
	if (engine_clone(&g->en, like, &g->e) == 0 && pthread_create(&g->thread, NULL, engine_get_thread, g) == 0)
		g->running = true;
}

int engine_get_join(struct engine_get *g, struct engine *like, json_t **ret, struct refit_err *e)
{
	if (g->running)
		pthread_join(g->thread, NULL);
	else
		g->rc = engine_get_json(like, g->path, &g->ans, &g->e);
	engine_close(g->en);
	g->en = NULL;
	g->running = false;
	*ret = g->ans;
	g->ans = NULL;
	if (g->rc < 0 && e)
		*e = g->e;
	return g->rc;
}

void engine_close(struct engine *en)
{
	if (!en)
		return;
	if (en->h)
		curl_easy_cleanup(en->h);
	free(en->host);
	free(en->base);
	free(en->socket);
	free(en->cert_dir);
	free(en);
}

const char *engine_api_version(const struct engine *en)
{
	return en->api;
}

const char *engine_server_version(const struct engine *en)
{
	return en->server_version;
}

bool engine_info_containerd_store(json_t *info)
{
	json_t *status = json_object_get(info, "DriverStatus"), *row;
	size_t i;

	json_array_foreach(status, i, row) {
		const char *k = json_string_value(json_array_get(row, 0));
		const char *v = json_string_value(json_array_get(row, 1));

		if (k && v && strcmp(k, "driver-type") == 0 && strcmp(v, "io.containerd.snapshotter.v1") == 0)
			return true;
	}
	return false;
}

bool engine_containerd_store(struct engine *en)
{
	json_t *info = NULL;
	struct refit_err e = { 0 };

	if (en->containerd_store == 0 && engine_get_json(en, "/info", &info, &e) == 0) {
		en->containerd_store = engine_info_containerd_store(info) ? 1 : -1;
		json_decref(info);
	}
	return en->containerd_store > 0; /* an unanswered /info is asked again next time */
}

int engine_get_json(struct engine *en, const char *path, json_t **ret, struct refit_err *e)
{
	char p[4096];

	if ((size_t)snprintf(p, sizeof(p), "/v%s%s", en->api, path) >= sizeof(p))
		return err_set(e, ERR_FAILED, "engine request path too long");
	if (engine_request(en, "GET", p, NULL, NULL, ENGINE_TIMEOUT, ret, NULL, e) < 0)
		return -1;
	if (!*ret)
		return err_set(e, ERR_FAILED, "engine: empty answer to GET %s", path);
	return 0;
}

int engine_call_auth(struct engine *en, const char *method, const char *path, json_t *body, const char *registry_auth,
		     long timeout, json_t **ret, long *status, struct refit_err *e)
{
	char p[4096];

	if ((size_t)snprintf(p, sizeof(p), "/v%s%s", en->api, path) >= sizeof(p))
		return err_set(e, ERR_FAILED, "engine request path too long");
	return engine_request(en, method, p, body, registry_auth, timeout > 0 ? timeout : ENGINE_TIMEOUT, ret, status,
			      e);
}

int engine_call(struct engine *en, const char *method, const char *path, json_t *body, long timeout,
		json_t **ret, long *status, struct refit_err *e)
{
	return engine_call_auth(en, method, path, body, NULL, timeout, ret, status, e);
}

/* State of a streamed pull: the last line seen and the first error reported. */
struct pull_stream {
	char line[8192];
	size_t len;
	bool overlong;
	char error[400];
};

/* Look at one complete line of the pull's JSON stream. */
static void pull_line(struct pull_stream *ps)
{
	json_t *j;
	const char *msg;

	if (ps->overlong || ps->len == 0 || ps->error[0])
		return;
	j = json_loadb(ps->line, ps->len, 0, NULL);
	msg = json_string_value(json_object_get(j, "error"));
	if (!msg)
		msg = json_string_value(json_object_get(json_object_get(j, "errorDetail"), "message"));
	if (!msg) /* an answer of 400 and up: {"message": ...}, newline-terminated */
		msg = json_string_value(json_object_get(j, "message"));
	if (msg)
		snprintf(ps->error, sizeof(ps->error), "%s", msg);
	json_decref(j);
}

/* Headers of a pull are not needed. */
static size_t pull_headers(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

/* Read the pull's progress stream line by line, keeping nothing but errors. */
static size_t pull_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct pull_stream *ps = userdata;
	size_t n = size * nmemb;

	for (size_t i = 0; i < n; i++) {
		if (ptr[i] == '\n') {
			pull_line(ps);
			ps->len = 0;
			ps->overlong = false;
		} else if (ps->len < sizeof(ps->line)) {
			ps->line[ps->len++] = ptr[i];
		} else {
			ps->overlong = true; /* a progress line this long is not an error report */
		}
	}
	return n;
}

int engine_pull(struct engine *en, const char *image, const char *tag, const char *registry_auth,
		long timeout, struct refit_err *e)
{
	struct pull_stream *ps = calloc(1, sizeof(*ps));
	struct curl_slist *hdrs = NULL;
	char url[4096], *auth_hdr = NULL, *ei = engine_escape(en, image), *et = tag ? engine_escape(en, tag) : NULL;
	long status = 0;
	struct timespec t0;
	CURLcode rc;
	int ret = -1;

	if (!ps || !ei || (tag && !et)) {
		err_set(e, ERR_FAILED, "out of memory");
		goto out;
	}
	snprintf(url, sizeof(url), "%s/v%s/images/create?fromImage=%s%s%s", en->base, en->api, ei,
		 et ? "&tag=" : "", et ? et : "");
	if (registry_auth && asprintf(&auth_hdr, "X-Registry-Auth: %s", registry_auth) < 0)
		auth_hdr = NULL;
	if ((registry_auth && !auth_hdr) || !(hdrs = curl_slist_append(NULL, "Content-Type: application/json")) ||
	    (auth_hdr && !curl_slist_append(hdrs, auth_hdr))) {
		err_set(e, ERR_FAILED, "out of memory");
		goto out;
	}
	en->errbuf[0] = '\0';
	curl_easy_setopt(en->h, CURLOPT_URL, url);
	curl_easy_setopt(en->h, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(en->h, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(en->h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(en->h, CURLOPT_WRITEFUNCTION, pull_write);
	curl_easy_setopt(en->h, CURLOPT_WRITEDATA, ps);
	/* Without a header callback curl hands headers to the write callback with HEADERDATA. */
	curl_easy_setopt(en->h, CURLOPT_HEADERFUNCTION, pull_headers);
	curl_easy_setopt(en->h, CURLOPT_HEADERDATA, NULL);
	waited_start(&t0);
	rc = curl_easy_perform(en->h);
	waited_stop(&t0);
	curl_easy_getinfo(en->h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(en->h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(en->h, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(en->h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(en->h, CURLOPT_WRITEDATA, NULL); /* PS is freed below; every request attaches anew */
	if (rc != CURLE_OK) {
		struct http_response none = { 0 };

		engine_fail(en, rc, &none, e);
		goto out;
	}
	pull_line(ps); /* a last line without a newline */
	if (status >= 400 || ps->error[0]) {
		if (ps->error[0])
			err_set(e, ERR_FAILED, "pull %s: %s", image, ps->error);
		else
			err_set(e, ERR_FAILED, "pull %s: the engine answered HTTP %ld", image, status);
		goto out;
	}
	ret = 0;
out:
	if (auth_hdr)
		explicit_bzero(auth_hdr, strlen(auth_hdr));
	free(auth_hdr);
	curl_slist_free_all(hdrs);
	free(ei);
	free(et);
	free(ps);
	return ret;
}

char *engine_escape(struct engine *en, const char *s)
{
	char *c = curl_easy_escape(en->h, s, 0);
	char *r = c ? strdup(c) : NULL;

	curl_free(c);
	return r;
}

/* GET /KIND/NAME/json, NAME escaped; 404 is 0 (see engine_container_inspect). */
static int inspect(struct engine *en, const char *kind, const char *what, const char *name, json_t **ret,
		   struct refit_err *e)
{
	_cleanup_(freep) char *esc = name ? engine_escape(en, name) : NULL;
	struct refit_err ie = { 0 };
	char path[1200];
	long status = 0;

	*ret = NULL;
	if (!esc)
		return err_set(e, ERR_FAILED, "%s: %s", what, name ? "out of memory" : "no name");
	if (path_fmt(path, sizeof(path), "/%s/%s/json", kind, esc) < 0)
		return err_set(e, ERR_FAILED, "%s %.80s...: name too long", what, name);
	if (engine_call(en, "GET", path, NULL, 0, ret, &status, &ie) < 0) {
		if (e)
			*e = ie; /* the engine's own words, "No such container: NAME" on 404 */
		return status == 404 ? 0 : -1;
	}
	if (!*ret)
		return err_set(e, ERR_FAILED, "engine: empty answer to the inspect of %s %.200s", what, name);
	return 1;
}

int engine_container_inspect(struct engine *en, const char *id_or_name, json_t **ret, struct refit_err *e)
{
	return inspect(en, "containers", "container", id_or_name, ret, e);
}

int engine_container_remove(struct engine *en, const char *id, bool volumes, struct refit_err *e)
{
	char path[160];
	long status = 0;
	struct refit_err ie = { 0 };

	snprintf(path, sizeof(path), "/containers/%.64s?force=1&v=%d", id, volumes ? 1 : 0);
	if (engine_call(en, "DELETE", path, NULL, 0, NULL, &status, &ie) == 0 || status == 404)
		return 0;
	if (status == 409 && strstr(ie.msg, "already in progress")) {
		struct timespec ts = { 0, 200 * 1000000L };

		for (int i = 0; i < 300; i++) {
			json_t *ins = NULL;
			int f = engine_container_inspect(en, id, &ins, &ie);

			json_decref(ins);
			if (f == 0)
				return 0;
			if (f < 0)
				break;
			nanosleep(&ts, NULL);
		}
	}
	*e = ie;
	return -1;
}

int engine_image_inspect(struct engine *en, const char *ref_or_id, json_t **ret, struct refit_err *e)
{
	return inspect(en, "images", "image", ref_or_id, ret, e);
}

/* Whether references A and B name one image now. */
static bool same_image(struct engine *en, const char *a, const char *b)
{
	_cleanup_(json_decrefp) json_t *ia = NULL, *ib = NULL;
	struct refit_err ie = { 0 };
	const char *x, *y;

	if (engine_image_inspect(en, a, &ia, &ie) != 1 || engine_image_inspect(en, b, &ib, &ie) != 1)
		return false;
	x = json_string_value(json_object_get(ia, "Id"));
	y = json_string_value(json_object_get(ib, "Id"));
	return x && y && strcmp(x, y) == 0;
}

int engine_image_tag(struct engine *en, const char *source, const char *repo, const char *tag, struct refit_err *e)
{
	_cleanup_(freep) char *er = engine_escape(en, repo), *et = engine_escape(en, tag), *want = NULL;
	struct timespec ts = { 0, 100 * 1000000L };
	struct refit_err ie = { 0 };
	char path[2048];
	long status = 0;

	if (!er || !et || asprintf(&want, "%s:%s", repo, tag) < 0)
		return err_set(e, ERR_FAILED, "out of memory");
	if (path_fmt(path, sizeof(path), "/images/%s/tag?repo=%s&tag=%s", source, er, et) < 0)
		return err_set(e, ERR_FAILED, "tag %.80s...: name too long", source);
	for (int i = 0; i < 5; i++) {
		if (engine_call(en, "POST", path, NULL, 0, NULL, &status, &ie) == 0)
			return 0;
		/*
		 * The containerd image store replaces a tag by delete and
		 * create, and refuses ("already exists") when another client
		 * tagged the name between the two: what counts is where the
		 * name points once the engine answers.
		 */
		if (same_image(en, want, source))
			return 0;
		if (status != 500 || !strstr(ie.msg, "already exists"))
			break;
		nanosleep(&ts, NULL);
	}
	*e = ie;
	return -1;
}

/* A streamed transfer: the caller's sink, or the error body of a refused request. */
struct stream_state {
	struct engine *en;
	engine_sink sink;
	void *arg;
	bool aborted;
	char errbody[1024];
	size_t errlen;
};

/* Hand the body to the sink, or keep the start of an error answer. */
static size_t stream_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct stream_state *st = userdata;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(st->en->h, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 400 || !st->sink) {
		size_t room = sizeof(st->errbody) - 1 - st->errlen;

		memcpy(st->errbody + st->errlen, ptr, n < room ? n : room);
		st->errlen += n < room ? n : room;
		st->errbody[st->errlen] = '\0';
		return n;
	}
	if (st->sink(ptr, n, st->arg) != 0) {
		st->aborted = true;
		return 0;
	}
	return n;
}

/* Read the upload's body from the file descriptor. */
static size_t stream_read(char *buf, size_t size, size_t nitems, void *userdata)
{
	int fd = *(int *)userdata;
	ssize_t n;

	do
		n = read(fd, buf, size * nitems);
	while (n < 0 && errno == EINTR);
	return n < 0 ? CURL_READFUNC_ABORT : (size_t)n;
}

/* The status and message of a finished streamed transfer. */
static int stream_finish(struct engine *en, CURLcode rc, struct stream_state *st, const char *what,
			 struct refit_err *e)
{
	long status = 0;

	curl_easy_getinfo(en->h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(en->h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(en->h, CURLOPT_UPLOAD, 0L);
	curl_easy_setopt(en->h, CURLOPT_CUSTOMREQUEST, NULL);
	curl_easy_setopt(en->h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(en->h, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(en->h, CURLOPT_READDATA, NULL);
	if (st->aborted)
		return err_set(e, ERR_FAILED, "%s: aborted", what);
	if (rc != CURLE_OK) {
		struct http_response none = { 0 };

		return engine_fail(en, rc, &none, e);
	}
	if (status >= 400) {
		json_t *j = json_loadb(st->errbody, st->errlen, 0, NULL);
		const char *m = json_string_value(json_object_get(j, "message"));

		err_set(e, ERR_FAILED, "%s: engine: %ld %.300s", what, status, m ? m : "error");
		json_decref(j);
		return -1;
	}
	return 0;
}

/* Point the handle at PATH for a streamed request: URL, timeout, and the
 * answer's body into ST (an error body kept for the message). */
static int stream_begin(struct engine *en, const char *path, long timeout, struct stream_state *st,
			struct refit_err *e)
{
	char url[4096];

	if ((size_t)snprintf(url, sizeof(url), "%s/v%s%s", en->base, en->api, path) >= sizeof(url))
		return err_set(e, ERR_FAILED, "engine request path too long");
	en->errbuf[0] = '\0';
	curl_easy_setopt(en->h, CURLOPT_URL, url); /* libcurl copies it */
	curl_easy_setopt(en->h, CURLOPT_TIMEOUT, timeout > 0 ? timeout : ENGINE_TIMEOUT);
	curl_easy_setopt(en->h, CURLOPT_WRITEFUNCTION, stream_write);
	curl_easy_setopt(en->h, CURLOPT_WRITEDATA, st);
	curl_easy_setopt(en->h, CURLOPT_HEADERFUNCTION, pull_headers);
	curl_easy_setopt(en->h, CURLOPT_HEADERDATA, NULL);
	return 0;
}

/* Run the request stream_begin set up; the time counts as waiting on the engine. */
static int stream_perform(struct engine *en, struct stream_state *st, const char *what, struct refit_err *e)
{
	struct timespec t0;
	CURLcode rc;

	waited_start(&t0);
	rc = curl_easy_perform(en->h);
	waited_stop(&t0);
	return stream_finish(en, rc, st, what, e);
}

int engine_get_stream(struct engine *en, const char *path, long timeout, engine_sink sink, void *arg,
		      struct refit_err *e)
{
	struct stream_state st = { .en = en, .sink = sink, .arg = arg };

	if (stream_begin(en, path, timeout, &st, e) < 0)
		return -1;
	curl_easy_setopt(en->h, CURLOPT_HTTPGET, 1L);
	return stream_perform(en, &st, "GET archive", e);
}

int engine_put_fd(struct engine *en, const char *path, int fd, long long size, const char *content_type,
		  long timeout, struct refit_err *e)
{
	struct stream_state st = { .en = en };
	struct curl_slist *hdrs = NULL;
	char ct[128];
	int ret;

	snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
	if (!(hdrs = curl_slist_append(NULL, ct)) || !curl_slist_append(hdrs, "Expect:")) {
		curl_slist_free_all(hdrs);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	if (stream_begin(en, path, timeout, &st, e) < 0) {
		curl_slist_free_all(hdrs);
		return -1;
	}
	curl_easy_setopt(en->h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(en->h, CURLOPT_READFUNCTION, stream_read);
	curl_easy_setopt(en->h, CURLOPT_READDATA, &fd);
	curl_easy_setopt(en->h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
	curl_easy_setopt(en->h, CURLOPT_HTTPHEADER, hdrs);
	ret = stream_perform(en, &st, "PUT archive", e);
	curl_slist_free_all(hdrs);
	return ret;
}
