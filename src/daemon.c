/* The service: schedule, operation queue, management API, signals, systemd notification. */
#include <errno.h>
#include <stdlib.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "refit/base.h"
#include "refit/api.h"
#include "refit/cron.h"
#include "refit/daemon.h"
#include "refit/engine.h"
#include "refit/events.h"
#include "refit/handover.h"
#include "refit/journal.h"
#include "refit/log.h"
#include "refit/models.h"
#include "refit/ops.h"
#include "refit/update.h"
#include "refit/version.h"

#define ENGINE_RETRY_SECONDS 30
#define RELOAD_CHECK_SECONDS 2 /* a reload waiting for the pass boundary is looked at this often */

/* Finish or undo what an interrupted run left in the journal; true when nothing is left. */
static bool daemon_recover(const struct refit_config *cfg)
{
	struct engine *en = NULL;
	struct journal *j = NULL;
	struct refit_err e = { 0 };
	int n;

	if (engine_open(&en, cfg->docker_host, &e) < 0) {
		log_error("%s; retrying in %d s", e.msg, ENGINE_RETRY_SECONDS);
		sd_notifyf(0, "STATUS=%s", e.msg);
		return false;
	}
	log_debug("engine API %s", engine_api_version(en));
	if (journal_open(&j, cfg->state_dir, 30, &e) < 0) {
		log_error("%s; interrupted operations, if any, are left for later", e.msg);
		engine_close(en);
		return false;
	}
	n = update_recover(en, j, cfg);
	journal_close(j);
	engine_close(en);
	if (n > 0)
		log_info("recovered %d interrupted operation%s", n, n == 1 ? "" : "s");
	return n >= 0;
}

/* Seconds until the next pass: the cron schedule when set, else poll_interval. */
static long daemon_wait(const struct refit_config *cfg)
{
	struct cron c;
	time_t now = time(NULL), at;
	char when[64];
	struct tm tm;

	if (!cfg->schedule || cron_parse(cfg->schedule, &c, NULL) < 0)
		return cfg->poll_interval;
	at = cron_next(&c, now);
	if (at == (time_t)-1) {
		log_warn("schedule \"%s\" never fires; using poll_interval", cfg->schedule);
		return cfg->poll_interval;
	}
	localtime_r(&at, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
	log_info("next pass at %s", when);
	return at - now > 0 ? at - now : 1;
}

/* A reloaded configuration took over: the API reads it anew (ops_on_config's hook). */
static void config_taken_over(void *api)
{
	api_config_changed(api);
}

/* Send STATUS=TEXT (the event bus's status hook). */
static void status_notify(const char *text)
{
	sd_notifyf(0, "STATUS=%s", text);
}

/*
 * Answer `refit reload` (SI: the SIGHUP it queued with RELOAD_ASK): SIGUSR1
 * with RELOAD_APPLIED or RELOAD_REFUSED. A plain SIGHUP (kill -HUP) gets no
 * answer: its sender did not ask for one and may not expect a signal.
 */
static void reload_answer(const siginfo_t *si, int answer)
{
	union sigval v = { .sival_int = answer };

	if (si->si_code != SI_QUEUE || si->si_value.sival_int != RELOAD_ASK || si->si_pid <= 0)
		return;
	if (sigqueue(si->si_pid, SIGUSR1, v) < 0)
		log_warn("reload: cannot answer pid %ld: %s", (long)si->si_pid, strerror(errno));
}

/* The monotonic clock in microseconds, as RELOADING=1's MONOTONIC_USEC wants it. */
static unsigned long long mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

/*
 * Reload the configuration: read and check it here, never waiting on the
 * running pass; the worker puts it in place at the next operation boundary.
 * A bad one is logged, said in STATUS= and the old one kept. RELOADING=1
 * and READY=1 go out at once either way. Returns RELOAD_APPLIED or
 * RELOAD_REFUSED.
 */
static int daemon_reload(const struct refit_config *cfg, struct ops *ops, struct api *api,
			 int (*reload)(struct refit_config *cfg, struct refit_err *e))
{
	struct refit_config *fresh = calloc(1, sizeof(*fresh));
	struct refit_err e = { 0 };
	char why[600] = "";

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration", mono_usec());
	if (!fresh) {
		snprintf(why, sizeof(why), "out of memory");
	} else if (reload(fresh, &e) < 0) {
		snprintf(why, sizeof(why), "%s", e.msg);
		free(fresh);
	} else if (strcmp(fresh->api_listen, cfg->api_listen) != 0 || strcmp(fresh->state_dir, cfg->state_dir) != 0) {
		snprintf(why, sizeof(why), "api.listen and state_dir change only with a restart");
		config_free(fresh);
		free(fresh);
	} else if (api_reload_token(api, fresh, &e) < 0) { /* the token first: a bad one keeps it all */
		snprintf(why, sizeof(why), "%s", e.msg);
		config_free(fresh);
		free(fresh);
	}
	if (why[0]) {
		log_error("reload: %s; keeping the running configuration", why);
		sd_notifyf(0, "READY=1\nSTATUS=reload refused, running configuration kept: %s", why);
		return RELOAD_REFUSED;
	}
	if (ops_reconfigure(ops, fresh))
		sd_notify(0, "READY=1\nSTATUS=configuration reloaded");
	else
		sd_notify(0, "READY=1\nSTATUS=configuration accepted; it takes over when the running pass ends");
	return RELOAD_APPLIED;
}

int daemon_run(struct refit_config *cfg, int (*reload)(struct refit_config *cfg, struct refit_err *e))
{
	pthread_rwlock_t cfg_lock = PTHREAD_RWLOCK_INITIALIZER;
	struct ops *ops = NULL;
	struct api *api = NULL;
	struct models_job *models = NULL;
	struct refit_err e = { 0 };
	uint64_t wd_usec = 0;
	unsigned long generation = 0;
	sigset_t set;
	time_t next = 0;
	bool wd = sd_watchdog_enabled(0, &wd_usec) > 0, recovered = false;
	int code = 0;

	/* Signals are taken here only; every thread inherits the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR2); /* a pass handed over to refit's replacement (handover.h) */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	events_status_hook(status_notify);
	signal(SIGPIPE, SIG_IGN);

	/* Refit's own container replaced: the replacement stands by here until it takes over. */
	handover_allow();
	if (handover_at_start(cfg) == 2) {
		log_info("stopped: the replacement took over");
		return 0;
	}

	if (ops_start(&ops, cfg, &cfg_lock, &e) < 0 || api_start(&api, cfg, &cfg_lock, ops, &e) < 0) {
		log_error("%s", e.msg);
		ops_free(ops);
		return e.kind ? e.kind : ERR_FAILED;
	}
	ops_on_config(ops, config_taken_over, api);
	if (!cfg->scheduled_passes)
		log_info("refit %s daemon: no scheduled passes, updating when asked through the API (%s), scope %s%s",
			 refit_version, cfg->api_listen, cfg->scope ? cfg->scope : "(none)",
			 ops_paused(ops) ? ", paused" : "");
	else if (cfg->schedule)
		log_info("refit %s daemon: updating on schedule \"%s\", scope %s%s", refit_version, cfg->schedule,
			 cfg->scope ? cfg->scope : "(none)", ops_paused(ops) ? ", paused" : "");
	else
		log_info("refit %s daemon: updating every %ld s, scope %s%s", refit_version, cfg->poll_interval,
			 cfg->scope ? cfg->scope : "(none)", ops_paused(ops) ? ", paused" : "");
	/* With a schedule the first pass waits for it, unless update_on_start says otherwise. */
	if (cfg->schedule && !cfg->update_on_start)
		next = mono_s() + daemon_wait(cfg);

	for (;;) {
		time_t now = mono_s();
		struct timespec ts;
		siginfo_t si;
		int sig;

		if (!recovered) {
			/* READY only once the journal is clean: nothing is half swapped. */
			recovered = daemon_recover(cfg);
			if (recovered) {
				sd_notify(0, "READY=1");
				/* The model job runs beside the container passes, from now on. */
				if (models_job_start(&models, cfg, &cfg_lock, ops, &e) < 0)
					log_error("model updater: %s", e.msg);
			} else {
				next = now + ENGINE_RETRY_SECONDS;
			}
		}
		if (recovered && now >= next && !cfg->scheduled_passes) {
			next = now + 3600; /* Watchtower's API mode: passes only when asked; a reload may change it */
			continue;
		}
		if (recovered && now >= next) {
			char id[17];

			if (ops_submit(ops, "scheduled", NULL, id, &e) < 0)
				log_warn("scheduled pass not queued: %s", e.msg);
			pthread_rwlock_rdlock(&cfg_lock);
			next = mono_s() + daemon_wait(cfg);
			pthread_rwlock_unlock(&cfg_lock);
			if (ops_paused(ops))
				sd_notifyf(0, "STATUS=paused; the scheduled pass %s is skipped", id);
			continue;
		}
		if (ops_config_generation(ops) != generation) {
			/* a reloaded configuration took over: its schedule counts from now */
			generation = ops_config_generation(ops);
			pthread_rwlock_rdlock(&cfg_lock);
			next = mono_s() + daemon_wait(cfg);
			pthread_rwlock_unlock(&cfg_lock);
		}
		ts.tv_sec = next > now ? next - now : 1;
		ts.tv_nsec = 0;
		if (ts.tv_sec > RELOAD_CHECK_SECONDS && ops_reload_pending(ops))
			ts.tv_sec = RELOAD_CHECK_SECONDS; /* see the reloaded schedule soon after it takes over */
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
			reload_answer(&si, daemon_reload(cfg, ops, api, reload));
			continue;
		}
		if (sig == SIGUSR2) {
			long t;

			if (!handover_done())
				continue;
			pthread_rwlock_rdlock(&cfg_lock);
			t = cfg->health_timeout * 2 + 30;
			pthread_rwlock_unlock(&cfg_lock);
			if (handover_wait_takeover(cfg, t) == 0) {
				log_info("the replacement took over: stopping");
				break;
			}
			handover_set_done(false);
			continue;
		}
		log_info("signal %s: finishing the swaps in progress, then stopping", strsignal(sig));
		update_request_stop();
		models_request_stop();
		break;
	}
	sd_notify(0, "STOPPING=1\nSTATUS=stopping: finishing the swaps in progress");
	models_job_stop(models); /* a model transfer in progress is abandoned */
	ops_stop(ops);
	events_status_hook(NULL);   /* the running operation ends after its swaps in progress; queued ones are dropped */
	api_stop(api);   /* requests in progress answer */
	ops_free(ops);
	pthread_rwlock_destroy(&cfg_lock);
	log_info("stopped");
	return code;
}
