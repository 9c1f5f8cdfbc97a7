/* refit fleet: a staged rollout over many hosts' management APIs, and their status. */
#ifndef REFIT_FLEET_H
#define REFIT_FLEET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "refit/error.h"

#define FLEET_MAX_FILE (1024u * 1024) /* bytes of a hosts file */
#define FLEET_MAX_HOSTS 1024
#define FLEET_MAX_NAME 64
#define FLEET_MAX_URL 2048
#define FLEET_MAX_TOKEN 4096
#define FLEET_MAX_PATH 4096
#define FLEET_MAX_ANSWER (4u * 1024 * 1024) /* bytes of one HTTP answer from a host */
#define FLEET_MAX_CONTAINERS 4096           /* entries of one operation result or container list */

/* One host of a hosts file. */
struct fleet_host {
	char *name;
	char *url;        /* scheme://host[:port][/prefix], without a trailing slash */
	char *token;      /* from token:, or read from token_file by fleet_hosts_load_tokens */
	char *token_file;
	char *ca_file;    /* https only: CA bundle that verifies the host */
	long timeout;     /* seconds for the whole operation (and its rollback); 0: the default */
	long connect_timeout; /* seconds; 0: the default */
	unsigned long line;   /* of the host's entry */
	unsigned long token_file_line;
	unsigned long ca_file_line;
};

struct fleet_hosts {
	struct fleet_host *v;
	size_t n;
	char *file; /* the name used in messages */
};

/*
 * Parse a hosts file's text (LEN bytes; FILE names it in messages):
 *   hosts:
 *     - name: NAME          [A-Za-z0-9_.-], at most 64, unique
 *       url: http(s)://HOST[:PORT][/PREFIX]
 *       token: T | token_file: PATH   (exactly one)
 *       ca_file: PATH       (https only)
 *       timeout: SECONDS    (1..86400)   connect_timeout: SECONDS (1..300)
 * Unknown or duplicate keys, duplicate names, bad URLs and values out of
 * range are -1 with E (ERR_USAGE) naming FILE, the line and the key. Reads
 * no file: token_file and ca_file are only remembered.
 */
int fleet_hosts_parse(const char *text, size_t len, const char *file, struct fleet_hosts *ret, struct refit_err *e);

/* Read PATH (at most FLEET_MAX_FILE) and parse it, then read each token_file and check each ca_file. */
int fleet_hosts_load(const char *path, struct fleet_hosts *ret, struct refit_err *e);

/* Read each host's token_file (first line, trimmed) and check each ca_file is readable. */
int fleet_hosts_load_tokens(struct fleet_hosts *h, struct refit_err *e);

/* Free (tokens are wiped first). */
void fleet_hosts_free(struct fleet_hosts *h);

/* Is URL one fleet accepts (see fleet_hosts_parse)? */
bool fleet_url_valid(const char *url);

/* One container of an operation's result, as the fleet reads it. */
struct fleet_change {
	char *name;
	char *image;
	char *status;     /* updated, rolled-back, failed, up-to-date, skipped, ... */
	char *old_digest; /* current_digest */
	char *new_digest; /* latest_digest */
	char *error;
};

/* An operation record (GET /api/v1/operations/ID), as the fleet reads it. */
struct fleet_op {
	char state[16];   /* queued, running, succeeded, failed */
	char *error;
	struct fleet_change *v;
	size_t n;
	size_t changed;   /* entries with status updated (or rolled-back, for a rollback) */
	size_t failed;    /* entries failed or rolled-back (for an update) */
};

/*
 * Parse an operation record. ROLLBACK: the operation is a rollback (then
 * rolled-back is the container's success). -1 with ERR (printable ASCII)
 * when BODY is not an operation record; strings are bounded and cleaned.
 */
int fleet_parse_op(const char *body, size_t len, bool rollback, struct fleet_op *ret, struct refit_err *e);
void fleet_op_free(struct fleet_op *op);

/* GET /api/v1/containers ({"containers":[...]} as `refit check --json`) into RET's entries. */
int fleet_parse_containers(const char *body, size_t len, struct fleet_op *ret, struct refit_err *e);

/* The operation ID of a 202 answer {"operation": ID}: 16 hex digits into ID. */
int fleet_parse_accepted(const char *body, size_t len, char id[17]);

/* GET /health: 0 when {"status":"ok"}; VERSION (cleaned) and *PAUSED filled when present. */
int fleet_parse_health(const char *body, size_t len, char *version, size_t vlen, bool *paused, struct refit_err *e);

/* An error answer's "error" text, cleaned to printable ASCII, into OUT (empty when none). */
void fleet_parse_error(const char *body, size_t len, char *out, size_t outlen);

/* How a rollout runs: refit fleet rollout's options (0: its defaults). */
struct fleet_rollout_opts {
	long canary, batch, timeout, connect_timeout;
	const char *target_version; /* checked by the caller (tag_valid) */
	bool rollback;              /* --rollback-on-failure */
	void (*progress)(void *arg, const char *host, const char *line); /* each progress line, or NULL */
	bool (*stopping)(void *arg); /* true: start no more hosts, stop following operations (or NULL) */
	void *arg;
};

/*
 * Ask every host of HOSTS (tokens loaded) for its health and containers:
 * the object `refit fleet status --json` prints ({"hosts":[...]}), new
 * reference, or NULL out of memory. Blocks for up to two minutes.
 */
json_t *fleet_status(const struct fleet_hosts *hosts, long connect_timeout);

/*
 * Roll out over HOSTS as `refit fleet rollout` does: the object its --json
 * prints ({"result", "rolled_back", "hosts"}), or NULL out of memory.
 * PROGRESS is called from the hosts' threads, one call at a time.
 */
json_t *fleet_rollout(const struct fleet_hosts *hosts, const struct fleet_rollout_opts *o);

/* `refit fleet ...`: ARGV after the word fleet. Returns the exit code (0, 1, 2). */
int fleet_main(int argc, char **argv);

/* The help of `refit fleet`. */
extern const char fleet_usage[];
extern const char fleet_help[];

#endif
