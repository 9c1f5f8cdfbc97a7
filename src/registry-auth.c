/* Registry credentials from every source users keep them in, and token answers. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "refit/base.h"
#include "refit/auth.h"

#define DOCKER_HUB_SERVER "https://index.docker.io/v1/"

extern char **environ;

void cred_free(struct cred *c)
{
	if (!c)
		return;
	free(c->username);
	if (c->password)
		explicit_bzero(c->password, strlen(c->password));
	free(c->password);
	if (c->identity_token)
		explicit_bzero(c->identity_token, strlen(c->identity_token));
	free(c->identity_token);
	memset(c, 0, sizeof(*c));
}

char *auth_basic(const char *user, const char *pass)
{
	size_t ul = strlen(user), pl = strlen(pass), n = ul + 1 + pl;
	unsigned char *plain = malloc(n + 1);
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	if (!plain || !out) {
		free(plain);
		free(out);
		return NULL;
	}
	memcpy(plain, user, ul);
	plain[ul] = ':';
	memcpy(plain + ul + 1, pass, pl);
	EVP_EncodeBlock((unsigned char *)out, plain, (int)n);
	explicit_bzero(plain, n);
	free(plain);
	return out;
}

char *auth_engine_header(const struct cred *c, const char *host)
{
	json_t *j = c->identity_token ? json_pack("{s:s, s:s}", "identitytoken", c->identity_token, "serveraddress", host)
				      : json_pack("{s:s?, s:s?, s:s}", "username", c->username, "password",
						  c->password, "serveraddress", host);
	char *plain = j ? json_dumps(j, JSON_COMPACT) : NULL, *out = NULL;
	size_t n;

	json_decref(j);
	if (!plain)
		return NULL;
	n = strlen(plain);
	out = malloc(4 * ((n + 2) / 3) + 1);
	if (out) {
		EVP_EncodeBlock((unsigned char *)out, (unsigned char *)plain, (int)n);
		for (char *p = out; *p; p++) /* the engine reads URL-safe base64 */
			*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	}
	explicit_bzero(plain, n);
	free(plain);
	return out;
}

/* True when HOST names Docker Hub under any of its spellings. */
static bool is_docker_hub(const char *host)
{
	return strcasecmp(host, "docker.io") == 0 || strcasecmp(host, "index.docker.io") == 0 ||
	       strcasecmp(host, "registry-1.docker.io") == 0;
}

/* Does a config.json auths key ("https://host/v1/", "host") name HOST? */
static bool auths_key_matches(const char *key, const char *host)
{
	char k[512];
	const char *p = key;
	size_t n;

	if (strncasecmp(p, "https://", 8) == 0)
		p += 8;
	else if (strncasecmp(p, "http://", 7) == 0)
		p += 7;
	n = strcspn(p, "/");
	if (n >= sizeof(k))
		return false;
	memcpy(k, p, n);
	k[n] = '\0';
	if (is_docker_hub(host))
		return is_docker_hub(k);
	return strcasecmp(k, host) == 0;
}

/* Take credentials from one config.json auths entry. */
static int auths_entry(json_t *ent, struct cred *ret, struct refit_err *e)
{
	const char *auth = json_string_value(json_object_get(ent, "auth"));
	const char *user = json_string_value(json_object_get(ent, "username"));
	const char *pass = json_string_value(json_object_get(ent, "password"));
	const char *idt = json_string_value(json_object_get(ent, "identitytoken"));

	if (auth && *auth) {
		size_t n = strlen(auth);
		unsigned char *dec = malloc(n + 1);
		int len;
		char *colon;

		if (!dec)
			return err_set(e, ERR_FAILED, "out of memory");
		len = n % 4 == 0 ? EVP_DecodeBlock(dec, (const unsigned char *)auth, (int)n) : -1;
		if (len < 0) {
			free(dec);
			return err_set(e, ERR_FAILED, "config.json: an \"auth\" entry is not valid base64");
		}
		while (len > 0 && dec[len - 1] == '\0' && auth[n - 1] == '=') /* padding */
			len--;
		dec[len] = '\0';
		colon = strchr((char *)dec, ':');
		if (!colon) {
			explicit_bzero(dec, (size_t)len);
			free(dec);
			return err_set(e, ERR_FAILED, "config.json: an \"auth\" entry is not user:password");
		}
		*colon = '\0';
		ret->username = strdup((char *)dec);
		ret->password = strdup(colon + 1);
		explicit_bzero(dec, (size_t)len);
		free(dec);
	} else if (user && pass) {
		ret->username = strdup(user);
		ret->password = strdup(pass);
	}
	if (idt && *idt)
		ret->identity_token = strdup(idt);
	if (!ret->username && !ret->identity_token)
		return 0;
	if ((ret->username && !ret->password) || (idt && *idt && !ret->identity_token)) {
		cred_free(ret);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	ret->source = "config.json";
	return 1;
}

int auth_helper_parse(const char *body, size_t len, struct cred *ret, struct refit_err *e)
{
	json_error_t jerr;
	json_t *j = json_loadb(body, len, 0, &jerr);
	const char *user = json_string_value(json_object_get(j, "Username"));
	const char *secret = json_string_value(json_object_get(j, "Secret"));

	if (!j || !user || !secret) {
		json_decref(j);
		return err_set(e, ERR_FAILED, "answer is not {\"Username\",\"Secret\"} JSON");
	}
	if (strcmp(user, "<token>") == 0) {
		ret->identity_token = strdup(secret);
	} else {
		ret->username = strdup(user);
		ret->password = strdup(secret);
	}
	json_decref(j);
	if (!ret->identity_token && !ret->password) {
		cred_free(ret);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	return 0;
}

/*
 * write(2) to a pipe whose reader may be gone (a helper that exits without
 * reading): EPIPE instead of a SIGPIPE that would end the whole process.
 */
static ssize_t write_nopipe(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old;
	ssize_t w;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	w = write(fd, buf, len);
	if (w < 0 && errno == EPIPE && !sigismember(&old, SIGPIPE)) {
		const struct timespec zero = { 0, 0 };
		int saved = errno;

		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			; /* take the SIGPIPE this write raised, if it is pending */
		errno = saved;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return w;
}

/*
 * Run `docker-credential-NAME get` with SERVER on stdin. Returns 1 with
 * *RET filled, 0 when the helper knows no credentials, -1 on failure.
 */
static int run_helper(const char *name, const char *server, struct cred *ret, struct refit_err *e)
{
	char prog[128], out[65536];
	char *argv[3];
	int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, status = 0, rc = -1;
	size_t got = 0, sent = 0, slen = strlen(server);
	posix_spawn_file_actions_t fa;
	long long deadline = mono_ms() + AUTH_HELPER_TIMEOUT_MS;
	pid_t pid;

	for (const char *p = name; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') && !strchr("-_.", *p))
			return err_set(e, ERR_FAILED, "credential helper name \"%.64s\" is not valid", name);
	if ((size_t)snprintf(prog, sizeof(prog), "docker-credential-%s", name) >= sizeof(prog))
		return err_set(e, ERR_FAILED, "credential helper name too long");
	argv[0] = prog;
	argv[1] = (char *)"get";
	argv[2] = NULL;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
		err_set(e, ERR_FAILED, "%s: pipe: %s", prog, strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	errno = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (errno) {
		err_set(e, ERR_FAILED, "%s: %s", prog, strerror(errno));
		goto out;
	}
	close(in[0]);
	close(outp[1]);
	in[0] = outp[1] = -1;
	fcntl(in[1], F_SETFL, O_NONBLOCK);

	/* Feed the server name, read the answer, within the deadline. */
	while (outp[0] >= 0) {
		struct pollfd pf[2] = { { outp[0], POLLIN, 0 }, { in[1], POLLOUT, 0 } };
		long long left = deadline - mono_ms();
		int np = in[1] >= 0 ? 2 : 1;

		if (left <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			err_set(e, ERR_FAILED, "%s: no answer within %d s", prog, AUTH_HELPER_TIMEOUT_MS / 1000);
			goto out;
		}
		if (poll(pf, (nfds_t)np, (int)left) < 0 && errno != EINTR)
			break;
		if (np == 2 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write_nopipe(in[1], server + sent, slen - sent);

			if (w > 0)
				sent += (size_t)w;
			if (w < 0 || sent == slen) {
				close(in[1]);
				in[1] = -1;
			}
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = read(outp[0], out + got, sizeof(out) - 1 - got);

			if (r <= 0 || (got += (size_t)r) >= sizeof(out) - 1) {
				close(outp[0]);
				outp[0] = -1;
			}
		}
	}
	out[got] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		/* Docker's helpers say "credentials not found" and exit 1 when they know nothing. */
		if (strstr(out, "not found") || strstr(out, "credentials not found"))
			rc = 0;
		else
			err_set(e, ERR_FAILED, "%s get: exit status %d", prog,
				WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		goto out;
	}
	if (auth_helper_parse(out, got, ret, e) < 0) {
		err_prefix(e, "%s get: ", prog);
		goto out;
	}
	ret->source = "credential helper";
	rc = 1;
out:
	explicit_bzero(out, sizeof(out));
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (outp[i] >= 0)
			close(outp[i]);
	}
	return rc;
}

/* Read $DOCKER_CONFIG/config.json (or ~/.docker/config.json); *RET NULL when absent. */
static int load_docker_config(json_t **ret, struct refit_err *e)
{
	const char *dir = getenv("DOCKER_CONFIG"), *home = getenv("HOME");
	char path[4096];
	json_error_t jerr;
	struct stat st;

	*ret = NULL;
	if (dir && *dir)
		snprintf(path, sizeof(path), "%s/config.json", dir);
	else
		snprintf(path, sizeof(path), "%s/.docker/config.json", home ? home : "/root");
	if (stat(path, &st) < 0)
		return errno == ENOENT ? 0 : err_set(e, ERR_FAILED, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)AUTH_MAX_DOCKER_CONFIG)
		return err_set(e, ERR_FAILED, "%s: not a file of at most %u bytes", path, AUTH_MAX_DOCKER_CONFIG);
	*ret = json_load_file(path, 0, &jerr);
	if (!*ret || !json_is_object(*ret)) {
		json_decref(*ret);
		*ret = NULL;
		return err_set(e, ERR_FAILED, "%s:%d: %s", path, jerr.line, jerr.text);
	}
	return 0;
}

/* Credentials for HOST from a docker config.json document. */
static int docker_config_lookup(json_t *dc, const char *host, struct cred *ret, struct refit_err *e)
{
	const char *server = is_docker_hub(host) ? DOCKER_HUB_SERVER : host;
	json_t *helpers = json_object_get(dc, "credHelpers"), *auths = json_object_get(dc, "auths");
	const char *store = json_string_value(json_object_get(dc, "credsStore"));
	const char *key;
	json_t *val;

	json_object_foreach(helpers, key, val) {
		if (json_is_string(val) && auths_key_matches(key, host))
			return run_helper(json_string_value(val), server, ret, e);
	}
	if (store && *store) {
		int rc = run_helper(store, server, ret, e);

		if (rc != 0)
			return rc;
	}
	json_object_foreach(auths, key, val) {
		if (json_is_object(val) && auths_key_matches(key, host)) {
			int rc = auths_entry(val, ret, e);

			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

int auth_lookup(const struct refit_config *cfg, const char *host, struct cred *ret, struct refit_err *e)
{
	const struct registry_cred *c = config_cred(cfg, host);
	const char *user = getenv("REPO_USER"), *pass = getenv("REPO_PASS");
	json_t *dc = NULL;
	int rc;

	memset(ret, 0, sizeof(*ret));
	if (!c && is_docker_hub(host))
		c = config_cred(cfg, "docker.io") ? config_cred(cfg, "docker.io") : config_cred(cfg, "index.docker.io");
	if (c) {
		ret->username = strdup(c->username);
		ret->password = strdup(c->password);
		ret->source = "config";
		if (!ret->username || !ret->password) {
			cred_free(ret);
			return err_set(e, ERR_FAILED, "out of memory");
		}
		return 1;
	}
	if (load_docker_config(&dc, e) < 0)
		return -1;
	rc = dc ? docker_config_lookup(dc, host, ret, e) : 0;
	json_decref(dc);
	if (rc != 0)
		return rc;
	if (user && *user && pass) {
		ret->username = strdup(user);
		ret->password = strdup(pass);
		ret->source = "REPO_USER";
		if (!ret->username || !ret->password) {
			cred_free(ret);
			return err_set(e, ERR_FAILED, "out of memory");
		}
		return 1;
	}
	return 0;
}

int auth_token_parse(const char *body, size_t len, char **token, long *expires_in, struct refit_err *e)
{
	json_error_t jerr;
	json_t *j, *exp;
	const char *t;

	if (len > AUTH_MAX_TOKEN_BODY)
		return err_set(e, ERR_FAILED, "token answer larger than %u bytes", AUTH_MAX_TOKEN_BODY);
	j = json_loadb(body, len, 0, &jerr);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return err_set(e, ERR_FAILED, "token answer is not a JSON object");
	}
	t = json_string_value(json_object_get(j, "token"));
	if (!t || !*t)
		t = json_string_value(json_object_get(j, "access_token"));
	if (!t || !*t || strlen(t) > 65536) {
		json_decref(j);
		return err_set(e, ERR_FAILED, "token answer has no token");
	}
	for (const char *p = t; *p; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			json_decref(j);
			return err_set(e, ERR_FAILED, "token holds characters not allowed in a header");
		}
	}
	exp = json_object_get(j, "expires_in");
	*expires_in = 60;
	if (json_is_integer(exp) && json_integer_value(exp) >= 1)
		*expires_in = json_integer_value(exp) > 86400 ? 86400 : (long)json_integer_value(exp);
	*token = strdup(t);
	json_decref(j);
	return *token ? 0 : err_set(e, ERR_FAILED, "out of memory");
}

json_t *auth_token_access(const char *token)
{
	const char *dot1 = strchr(token, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	size_t n = dot2 ? (size_t)(dot2 - dot1 - 1) : 0, pad = (4 - n % 4) % 4;
	unsigned char *b64, *dec;
	json_t *claims, *access = NULL;
	int len;

	if (!dot2 || n == 0 || n > AUTH_MAX_TOKEN_BODY || pad == 3)
		return NULL; /* not a JWT: an opaque token */
	b64 = malloc(n + pad + 1);
	dec = malloc(n + pad + 1);
	if (!b64 || !dec) {
		free(b64);
		free(dec);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		char c = dot1[1 + i];

		b64[i] = (unsigned char)(c == '-' ? '+' : c == '_' ? '/' : c);
	}
	memset(b64 + n, '=', pad);
	b64[n + pad] = '\0';
	len = EVP_DecodeBlock(dec, b64, (int)(n + pad));
	free(b64);
	if (len < 0) {
		free(dec);
		return NULL;
	}
	len -= (int)pad; /* EVP_DecodeBlock counts the padding as zero bytes */
	claims = len > 0 ? json_loadb((const char *)dec, (size_t)len, 0, NULL) : NULL;
	free(dec);
	if (json_is_array(json_object_get(claims, "access")))
		access = json_incref(json_object_get(claims, "access"));
	json_decref(claims);
	return access;
}

int auth_access_grants(json_t *access, const char *scope)
{
	const char *first = strchr(scope, ':'), *last = strrchr(scope, ':');
	json_t *a;
	size_t i;

	if (!access)
		return -1;
	if (!first || last == first)
		return 0;
	json_array_foreach(access, i, a) {
		const char *type = json_string_value(json_object_get(a, "type"));
		const char *name = json_string_value(json_object_get(a, "name"));
		json_t *actions = json_object_get(a, "actions"), *v;
		size_t k;

		if (!type || !name || strlen(type) != (size_t)(first - scope) || strncmp(type, scope, strlen(type)) != 0 ||
		    strlen(name) != (size_t)(last - first - 1) || strncmp(name, first + 1, strlen(name)) != 0)
			continue;
		json_array_foreach(actions, k, v) {
			const char *act = json_string_value(v);

			if (act && (strcmp(act, last + 1) == 0 || strcmp(act, "*") == 0))
				return 1;
		}
	}
	return 0;
}

int auth_engine_header_for(const struct refit_config *cfg, const char *domain, char **hdr, struct refit_err *e)
{
	struct cred cr = { 0 };
	int found = auth_lookup(cfg, domain, &cr, e);

	*hdr = NULL;
	if (found < 0)
		return -1;
	if (found == 1 &&
	    !(*hdr = auth_engine_header(&cr, strcmp(domain, "docker.io") == 0 ? "https://index.docker.io/v1/" : domain))) {
		cred_free(&cr);
		return err_set(e, ERR_FAILED, "out of memory");
	}
	cred_free(&cr);
	return 0;
}
