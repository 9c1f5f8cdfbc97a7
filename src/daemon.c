/* The service loop: passes on a poll interval, signals, systemd notification. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "refit/check.h"
#include "refit/cron.h"
#include "refit/daemon.h"
#include "refit/engine.h"
#include "refit/log.h"
#include "refit/journal.h"
#include "refit/registry.h"
#include "refit/update.h"

#define ENGINE_RETRY_SECONDS 30

/* Run one check pass and log what it found. */
static void daemon_pass(struct engine *en, struct registry *reg, const struct refit_config *cfg)
{
	struct check_result res;
	struct refit_err e = { 0 };
	size_t avail = 0, errors = 0;

	if (check_run(en, reg, cfg, NULL, 0, &res, &e) < 0) {
		log_error("check: %s", e.msg);
		sd_notifyf(0, "STATUS=check failed: %s", e.msg);
		return;
	}
	for (size_t i = 0; i < res.n; i++) {
		const struct check_entry *c = &res.v[i];

		if (c->err_kind) {
			errors++;
			log_warn("%s (%s): %s", c->name, c->image ? c->image : "?", c->error);
		} else if (c->update_available == 1) {
			avail++;
			log_info("%s (%s): update available %s -> %s", c->name, c->image,
				 c->current_digest ? c->current_digest : "?", c->latest_digest ? c->latest_digest : "?");
		}
	}
	log_info("check: %zu containers, %zu references, %zu updates available, %zu errors", res.n,
		 res.lookups, avail, errors);
	sd_notifyf(0, "STATUS=last pass: %zu containers, %zu updates available, %zu errors", res.n, avail,
		   errors);
	check_result_free(&res);
}

/* Finish or undo what an interrupted run left in the journal; true when nothing is left. */
static bool daemon_recover(struct engine *en, const struct refit_config *cfg)
{
	struct journal *j = NULL;
	struct refit_err e = { 0 };
	int n;

	if (journal_open(&j, cfg->state_dir, 30, &e) < 0) {
		log_error("%s; interrupted operations, if any, are left for later", e.msg);
		return false;
	}
	n = update_recover(en, j, cfg);
	journal_close(j);
	if (n > 0)
		log_info("recovered %d interrupted operation%s", n, n == 1 ? "" : "s");
	return n >= 0;
}

/* Seconds until the next pass: the cron schedule when set, else poll_interval. */
static long daemon_wait(const struct refit_config *cfg)
{
	struct cron c;
	time_t now = time(NULL), at;

	if (!cfg->schedule || cron_parse(cfg->schedule, &c, NULL) < 0)
		return cfg->poll_interval;
	at = cron_next(&c, now);
	if (at == (time_t)-1) {
		log_warn("schedule \"%s\" never fires; using poll_interval", cfg->schedule);
		return cfg->poll_interval;
	}
	{
		char when[64];
		struct tm tm;

		localtime_r(&at, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
		log_info("next pass at %s", when);
	}
	return at - now > 0 ? at - now : 1;
}

/* Seconds on the monotonic clock. */
static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

int daemon_run(struct refit_config *cfg, int (*reload)(struct refit_config *cfg, struct refit_err *e))
{
	struct engine *en = NULL;
	struct registry *reg = NULL;
	struct refit_err e = { 0 };
	uint64_t wd_usec = 0;
	sigset_t set;
	time_t next = 0;
	bool wd = sd_watchdog_enabled(0, &wd_usec) > 0;
	bool recovered = false;
	int code = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (registry_new(&reg, cfg, &e) < 0) {
		log_error("%s", e.msg);
		return e.kind ? e.kind : ERR_FAILED;
	}
	if (cfg->schedule)
		log_info("refit %s daemon: checking on schedule \"%s\", scope %s", REFIT_VERSION, cfg->schedule,
			 cfg->scope ? cfg->scope : "(none)");
	else
		log_info("refit %s daemon: checking every %ld s, scope %s", REFIT_VERSION, cfg->poll_interval,
			 cfg->scope ? cfg->scope : "(none)");
	sd_notify(0, "READY=1\nSTATUS=starting");
	/* With a schedule the first pass waits for it, unless update_on_start says otherwise. */
	if (cfg->schedule && !cfg->update_on_start)
		next = mono_s() + daemon_wait(cfg);

	for (;;) {
		time_t now = mono_s();
		struct timespec ts;
		siginfo_t si;
		int sig;

		if (now >= next) {
			if (!en && engine_open(&en, cfg->docker_host, &e) < 0) {
				log_error("%s; retrying in %d s", e.msg, ENGINE_RETRY_SECONDS);
				sd_notifyf(0, "STATUS=%s", e.msg);
				next = now + ENGINE_RETRY_SECONDS;
			} else {
				if (!recovered)
					recovered = daemon_recover(en, cfg);
				daemon_pass(en, reg, cfg);
				/* Reconnect next time: the engine may have restarted meanwhile. */
				engine_close(en);
				en = NULL;
				next = mono_s() + daemon_wait(cfg);
			}
			continue;
		}
		ts.tv_sec = next - now;
		ts.tv_nsec = 0;
		if (wd && (uint64_t)ts.tv_sec * 1000000 > wd_usec / 2) {
			ts.tv_sec = (time_t)(wd_usec / 2000000);
			ts.tv_nsec = (long)(wd_usec / 2 % 1000000) * 1000;
		}
		sig = sigtimedwait(&set, &si, &ts);
		if (wd)
			sd_notify(0, "WATCHDOG=1");
		if (sig < 0)
			continue; /* timeout or EINTR */
		if (sig == SIGHUP) {
			struct refit_config fresh;

			sd_notify(0, "RELOADING=1");
			if (reload(&fresh, &e) < 0) {
				log_error("reload: %s; keeping the running configuration", e.msg);
			} else {
				struct refit_config old = *cfg;

				/* The registry client points at *cfg: swap in place, then rebuild it. */
				*cfg = fresh;
				registry_free(reg);
				if (registry_new(&reg, cfg, &e) < 0) {
					log_error("reload: %s; keeping the running configuration", e.msg);
					config_free(cfg);
					*cfg = old;
					if (registry_new(&reg, cfg, &e) < 0) {
						log_error("%s", e.msg);
						code = ERR_FAILED;
						break;
					}
				} else {
					config_free(&old);
					log_info("configuration reloaded");
					next = 0;
				}
			}
			sd_notify(0, "READY=1");
			continue;
		}
		log_info("signal %s: stopping", strsignal(sig));
		break;
	}
	sd_notify(0, "STOPPING=1");
	engine_close(en);
	registry_free(reg);
	return code;
}
