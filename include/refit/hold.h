/*
 * What state_dir remembers of digests between passes: the digests held
 * after their rollback (per container), and when each new digest was first
 * seen (for the cooldown). One file, STATE_DIR/digests.json, replaced
 * durably (temporary file, fsync, rename) under STATE_DIR/digests.lock.
 */
#ifndef REFIT_HOLD_H
#define REFIT_HOLD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "refit/check.h"
#include "refit/config.h"
#include "refit/error.h"

#define HOLD_FILE "digests.json"
#define HOLD_MAX_FILE (4u << 20)
#define HOLD_MAX 4096        /* holds kept; beyond, the oldest go */
#define SEEN_MAX 4096        /* first-seen times kept; beyond, the oldest go */
#define HOLD_MAX_REASON 512

/*
 * Read the file's text BUF (LEN bytes): {"holds":{NAME:{"image","digest",
 * "since","reason"}}, "seen":{"IMAGE@DIGEST":TIME}}. Every entry is checked
 * (a container name, a reference, a sha256 digest, times in range, bounded
 * strings); what fails is dropped, so the answer is always that shape
 * (new reference), empty for text that is not such a document.
 */
json_t *hold_parse(const char *buf, size_t len);

/* STATE_DIR's document as hold_parse gives it (empty when there is none or it cannot be read). */
json_t *hold_load(const char *state_dir);

/*
 * Hold DIGEST of IMAGE for container NAME (REASON: why, for `check` and
 * the API), replacing any hold it had; durable before it returns.
 */
int hold_add(const char *state_dir, const char *name, const char *image, const char *digest, const char *reason,
	     struct refit_err *e);

/*
 * hold_release for the API's checked release body PARAMS ({"containers":
 * [...]} or {"all": true}, from api_parse(BODY_RELEASE)).
 */
int hold_release_params(const char *state_dir, json_t *params, json_t **released, struct refit_err *e);

/*
 * Clear the holds of NAMES (all of them with ALL). *RELEASED (when given)
 * gets the array of names whose hold was cleared.
 */
int hold_release(const char *state_dir, char *const *names, size_t nnames, bool all, json_t **released,
		 struct refit_err *e);

/*
 * After a check pass over RES (CFG's state_dir): an entry with an update
 * whose digest is held for it becomes ENTRY_HELD, one whose digest was
 * first seen less than its cooldown ago ENTRY_COOLDOWN (with its eligible
 * time); a digest seen for the first time is recorded (when state_dir can
 * be written). With FORCE (an update of named containers) nothing is held back.
 */
void hold_check(const struct refit_config *cfg, struct check_result *res, bool force, time_t now);

/*
 * After an update pass: hold the digest of every entry rolled back (unless
 * held already), and drop the holds of the entries checked whose registry
 * now serves another digest or that are on the held one.
 */
void hold_pass_done(const struct refit_config *cfg, struct check_result *res);

/* Hold entry C's digest after its rollback, and say so in its error (for the notification). */
void hold_entry(const struct refit_config *cfg, struct check_entry *c, const char *why);

#endif
