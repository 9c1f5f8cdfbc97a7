/* Metrics: counters and histograms behind one lock, rendered as Prometheus text. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refit/metrics.h"

static const double buckets[] = { 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600 };
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct histogram {
	unsigned long count[NBUCKETS];
	unsigned long n;
	double sum;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	unsigned long scanned, updated, failed, rolled_back, passes, skipped;
	unsigned long last_scanned, last_updated, last_failed, held, cooldown;
	unsigned long ping, token, manifest;
	unsigned long models_checked, models_updated, models_failed, model_passes, model_skipped;
	struct histogram pass, swap;
} m;

/* Add one observation. */
static void observe(struct histogram *h, double v)
{
	for (size_t i = 0; i < NBUCKETS; i++)
		if (v <= buckets[i])
			h->count[i]++;
	h->n++;
	h->sum += v;
}

void metrics_pass(const char *kind, const struct check_result *res, double seconds)
{
	unsigned long up = 0, fail = 0, rb = 0, held = 0, cool = 0;

	for (size_t i = 0; i < res->n; i++) {
		enum entry_status ch = entry_status_change(res->v[i].status);

		up += ch == ENTRY_UPDATED;
		rb += ch == ENTRY_ROLLED_BACK;
		fail += ch == ENTRY_FAILED;
		held += res->v[i].status == ENTRY_HELD || res->v[i].held;
		cool += res->v[i].status == ENTRY_COOLDOWN;
	}
	pthread_mutex_lock(&lock);
	m.passes++;
	m.scanned += res->n;
	if (strcmp(kind, "rollback") == 0) {
		m.rolled_back += rb;
		m.held += held; /* a rollback's pass covers the containers rolled back only */
	} else {
		m.held = held;
		m.cooldown = cool;
		m.updated += up;
		m.rolled_back += rb;
	}
	m.failed += fail + (strcmp(kind, "rollback") != 0 ? rb : 0);
	m.last_scanned = res->n;
	m.last_updated = up;
	m.last_failed = fail + rb;
	observe(&m.pass, seconds);
	pthread_mutex_unlock(&lock);
}

void metrics_swap(double seconds)
{
	pthread_mutex_lock(&lock);
	observe(&m.swap, seconds);
	pthread_mutex_unlock(&lock);
}

void metrics_skipped(void)
{
	pthread_mutex_lock(&lock);
	m.skipped++;
	pthread_mutex_unlock(&lock);
}

void metrics_models(unsigned long checked, unsigned long updated, unsigned long failed)
{
	pthread_mutex_lock(&lock);
	m.model_passes++;
	m.models_checked += checked;
	m.models_updated += updated;
	m.models_failed += failed;
	pthread_mutex_unlock(&lock);
}

void metrics_models_skipped(void)
{
	pthread_mutex_lock(&lock);
	m.model_skipped++;
	pthread_mutex_unlock(&lock);
}

void metrics_registry(const struct registry_stats *now)
{
	pthread_mutex_lock(&lock);
	m.ping = now->ping;
	m.token = now->token;
	m.manifest = now->manifest;
	pthread_mutex_unlock(&lock);
}

/* Append printf-style text to a growing buffer. */
static void out(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void out(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!*buf)
		return;
	va_start(ap, fmt);
	n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= *cap - *len) {
		char *p = realloc(*buf, *cap * 2 + (size_t)n);

		if (!p) {
			free(*buf);
			*buf = NULL;
			return;
		}
		*buf = p;
		*cap = *cap * 2 + (size_t)n;
		va_start(ap, fmt);
		vsnprintf(*buf + *len, *cap - *len, fmt, ap);
		va_end(ap);
	}
	*len += (size_t)n;
}

/* One counter or gauge with its HELP and TYPE lines. */
static void metric(char **b, size_t *l, size_t *c, const char *name, const char *type, const char *help,
		   unsigned long v)
{
	out(b, l, c, "# HELP %s %s\n# TYPE %s %s\n%s %lu\n", name, help, name, type, name, v);
}

/* A histogram with its buckets, sum and count. */
static void hist(char **b, size_t *l, size_t *c, const char *name, const char *help, const struct histogram *h)
{
	out(b, l, c, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (size_t i = 0; i < NBUCKETS; i++)
		out(b, l, c, "%s_bucket{le=\"%g\"} %lu\n", name, buckets[i], h->count[i]);
	out(b, l, c, "%s_bucket{le=\"+Inf\"} %lu\n%s_sum %.3f\n%s_count %lu\n", name, h->n, name, h->sum, name, h->n);
}

char *metrics_render(bool paused)
{
	size_t len = 0, cap = 8192;
	char *b = malloc(cap);

	if (!b)
		return NULL;
	b[0] = '\0';
	pthread_mutex_lock(&lock);
	metric(&b, &len, &cap, "refit_containers_scanned_total", "counter", "Containers looked at by passes.", m.scanned);
	metric(&b, &len, &cap, "refit_containers_updated_total", "counter", "Containers swapped to a new image.", m.updated);
	metric(&b, &len, &cap, "refit_containers_failed_total", "counter",
	       "Containers that could not be updated or rolled back (left on a working version).", m.failed);
	metric(&b, &len, &cap, "refit_containers_held", "gauge",
	       "Containers whose newest digest is held after its rollback (last pass).", m.held);
	metric(&b, &len, &cap, "refit_containers_cooldown", "gauge",
	       "Containers whose newest digest waits out its cooldown (last pass).", m.cooldown);
	metric(&b, &len, &cap, "refit_containers_rolled_back_total", "counter",
	       "Containers put back on their previous version, automatically or on request.", m.rolled_back);
	metric(&b, &len, &cap, "refit_passes_total", "counter", "Passes run (scheduled and triggered).", m.passes);
	metric(&b, &len, &cap, "refit_passes_skipped_total", "counter", "Scheduled passes not run because updates are paused.",
	       m.skipped);
	out(&b, &len, &cap,
	    "# HELP refit_registry_requests_total Registry requests sent, by kind.\n"
	    "# TYPE refit_registry_requests_total counter\n"
	    "refit_registry_requests_total{kind=\"ping\"} %lu\n"
	    "refit_registry_requests_total{kind=\"token\"} %lu\n"
	    "refit_registry_requests_total{kind=\"manifest\"} %lu\n",
	    m.ping, m.token, m.manifest);
	metric(&b, &len, &cap, "refit_models_checked_total", "counter", "Models checked by model passes (pulled, or failed before their pull).", m.models_checked);
	metric(&b, &len, &cap, "refit_models_updated_total", "counter", "Models whose digest changed with a pull.",
	       m.models_updated);
	metric(&b, &len, &cap, "refit_models_failed_total", "counter",
	       "Models whose pull failed (error, endpoint unreachable, timeout).", m.models_failed);
	metric(&b, &len, &cap, "refit_model_passes_total", "counter", "Model passes run.", m.model_passes);
	metric(&b, &len, &cap, "refit_model_passes_skipped_total", "counter",
	       "Scheduled model passes not run because updates are paused.", m.model_skipped);
	metric(&b, &len, &cap, "refit_paused", "gauge", "1 while updates are paused.", paused ? 1 : 0);
	hist(&b, &len, &cap, "refit_pass_duration_seconds", "Wall time of a pass.", &m.pass);
	hist(&b, &len, &cap, "refit_swap_duration_seconds", "Wall time of one container's swap.", &m.swap);
	/* Watchtower's names, so existing dashboards keep working. */
	metric(&b, &len, &cap, "watchtower_containers_scanned", "gauge", "Containers scanned in the last pass.",
	       m.last_scanned);
	metric(&b, &len, &cap, "watchtower_containers_updated", "gauge", "Containers updated in the last pass.",
	       m.last_updated);
	metric(&b, &len, &cap, "watchtower_containers_failed", "gauge", "Containers that failed in the last pass.",
	       m.last_failed);
	metric(&b, &len, &cap, "watchtower_scans_total", "counter", "Passes run.", m.passes);
	metric(&b, &len, &cap, "watchtower_scans_skipped", "counter", "Passes skipped.", m.skipped);
	pthread_mutex_unlock(&lock);
	return b;
}
