/*
 * `refit [WATCHTOWER FLAGS] [NAME...]` and `refit watchtower ...`: run as
 * containrrr/watchtower runs with the same command line: the daemon, one
 * pass with --run-once, one rollback with --run-once --rollback, or the
 * health check.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "refit/daemon.h"
#include "refit/log.h"
#include "refit/notify.h"
#include "refit/watchtower.h"

extern char **environ;

static struct watchtower wt;

const struct watchtower *watchtower_opts;

/* Discard what curl sends. */
static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/*
 * --health-check: 0 when the daemon's API on api.listen answers GET /livez
 * with 200 (an address of every interface is asked on loopback), else 1.
 */
static int health_check(const struct refit_config *cfg)
{
	const char *colon = strrchr(cfg->api_listen, ':');
	char host[300], url[400];
	long status = 0;
	CURL *c;
	CURLcode rc;

	snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - cfg->api_listen) : 0, cfg->api_listen);
	if (strcmp(host, "0.0.0.0") == 0 || !*host)
		snprintf(host, sizeof(host), "127.0.0.1");
	else if (strcmp(host, "[::]") == 0)
		snprintf(host, sizeof(host), "[::1]");
	snprintf(url, sizeof(url), "http://%s:%s/livez", host, colon ? colon + 1 : "8010");
	c = curl_easy_init();
	if (!c)
		return 1;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (status != 200)
		fprintf(stderr, "refit: %s: %s\n", url, rc != CURLE_OK ? curl_easy_strerror(rc) : "not alive");
	return status == 200 ? 0 : 1;
}

int watchtower_main(int argc, char **argv, int first)
{
	struct refit_config cfg;
	struct refit_err e = { 0 };
	int code;

	if (watchtower_parse(&wt, argc, argv, first, &opts.config, &e) < 0) {
		fprintf(stderr, "refit: %s\n", e.msg);
		free(wt.names);
		return ERR_USAGE;
	}
	if (wt.help) {
		watchtower_print_help(stdout);
		free(wt.names);
		return 0;
	}
	if (watchtower_env_run_once(environ))
		wt.run_once = true;
	watchtower_opts = &wt;
	opts.args = wt.names;
	opts.nargs = wt.nnames;
	if (load_config(&cfg, &e) < 0) {
		fprintf(stderr, "refit: %s\n", e.msg);
		free(wt.names);
		return ERR_USAGE;
	}
	log_setup(log_level_parse(cfg.log_level), strcmp(cfg.log_format, "json") == 0);
	for (size_t i = 0; i < cfg.warnings.n; i++)
		log_warn("%s", cfg.warnings.v[i]);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (wt.health_check) {
		code = health_check(&cfg);
	} else if (wt.rollback && !wt.run_once) {
		fprintf(stderr, "refit: --rollback goes with --run-once (one rollback, then exit)\n");
		code = ERR_USAGE;
	} else if (wt.run_once) {
		struct op_request rq = { .kind = wt.rollback ? OP_ROLLBACK : OP_UPDATE,
					 .names = wt.names,
					 .nnames = wt.nnames,
					 .all = wt.rollback && wt.nnames == 0 };

		code = run_op(&cfg, &rq);
	} else {
		code = daemon_run(&cfg, load_config);
	}
	notify_flush(NOTIFY_EXIT_WAIT);
	config_free(&cfg);
	curl_global_cleanup();
	free(wt.names);
	return code;
}
