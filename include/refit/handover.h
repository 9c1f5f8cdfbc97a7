/*
 * Self-update: refit's own container handed over to its replacement.
 *
 * The daemon that finds its own container stale finishes the pass, then
 * (the handover strategy, swap-handover.c) sets itself aside, creates and
 * starts its replacement under its name and writes STATE_DIR/handover.json
 * ({"from": OLD-ID, "to": NEW-ID, "name", "image", "digest"}). The
 * replacement, seeing itself named "to", stands by: it writes
 * STATE_DIR/handover-ready once it is ready (configuration read, engine
 * answering: what /readyz checks; its API cannot listen yet, the old one
 * holds the address) and waits for the state directory's lock, which the
 * old one holds for its whole pass. The old one, once the replacement is
 * ready, records the update and releases the lock; the replacement takes
 * it, removes the old container and runs. A replacement that exits, or is
 * not ready in time, is removed and the old one stays (its digest held); a
 * replacement that takes no lock in time is removed the same way.
 */
#ifndef REFIT_HANDOVER_H
#define REFIT_HANDOVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "refit/config.h"
#include "refit/error.h"

#define HANDOVER_FILE "handover.json"
#define HANDOVER_READY "handover-ready"
#define HANDOVER_MAX_FILE 4096
/* Watchtower's label on an updater's own container */
#define WATCHTOWER_MARKER "com.centurylinklabs.watchtower"

struct engine;

/*
 * The ID of the container this process runs in, from the text of
 * /proc/self/mountinfo (BUF, LEN bytes): the 64-hex-digit directory of the
 * file the engine mounts on /etc/hostname. 0 and OUT filled, -1 when none.
 */
int handover_id_from_mountinfo(const char *buf, size_t len, char out[65]);

/* This process's container ID (cached), or NULL when it runs in none. */
const char *handover_self_id(void);

/* Whether ID (a full container ID) is this process's own container. */
bool handover_is_self(const char *id);

/*
 * The checked handover.json text BUF: an object with "from" and "to" (64 hex
 * digits each), "name" (a container name), "image" and "digest" (strings);
 * NULL for anything else (new reference).
 */
json_t *handover_parse(const char *buf, size_t len);

/* STATE_DIR's handover.json as handover_parse gives it, or NULL. */
json_t *handover_load(const char *state_dir);

/* Write STATE_DIR's handover.json durably; remove it (and the ready mark) with NULL. */
int handover_store(const char *state_dir, json_t *h, struct refit_err *e);

/*
 * The old side, after its pass: wait up to TIMEOUT_S for the replacement
 * to wait for, and take, the lock (it removes this container then). When it
 * does not, put this container back under its name, remove the replacement,
 * hold its digest, and return 1 (the daemon goes on); 0 when the
 * replacement took over (this process is then about to be removed).
 */
int handover_wait_takeover(const struct refit_config *cfg, long timeout_s);

/*
 * At the daemon's start, before its API listens: when handover.json names
 * this container as the replacement, stand by (ready mark, then the lock),
 * take over (finish the record, remove the old container) and return 1;
 * when it names it as the old side (restarted during its handover), wait
 * for the takeover as above: 2 when the replacement took over (this refit
 * ends), 1 when it was undone; 0 when there is no handover for this one.
 */
int handover_at_start(const struct refit_config *cfg);

/* Whether this process handed over (its pass started a replacement that is ready): no more operations. */
bool handover_done(void);
void handover_set_done(bool done);

/* The daemon allows a pass to hand over; other commands skip refit's own container. */
void handover_allow(void);
bool handover_allowed(void);

#endif
