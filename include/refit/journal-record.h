/*
 * The journal record: one JSON object per change of one container, model
 * or service, written in flight (state_dir/journal/ID.json, before every
 * step) and then appended to the history (state_dir/history.jsonl). Every
 * key is named here, with what it holds; readers use these names and the
 * accessors below, never a key spelled by hand.
 */
#ifndef REFIT_JOURNAL_RECORD_H
#define REFIT_JOURNAL_RECORD_H

#include <jansson.h>
#include <stdbool.h>

#include "refit/check.h"

#define JR_ID "id"                     /* the operation's id: 16 hex digits */
#define JR_KIND "kind"                 /* update, rollback, migrate (a service: update, rollback); model */
#define JR_CONTAINER "container"       /* the container's name before the change */
#define JR_NEW_NAME "new_name"         /* the name it ends under (alias, migration), else absent */
#define JR_MODEL "model"               /* kind model: the model's name */
#define JR_STRATEGY "strategy"         /* recreate, blue-green, alias, swarm */
#define JR_STEP "step"                 /* the last step journaled before it was taken */
#define JR_OLD_ID "old_id"             /* the old container's ID */
#define JR_OLD_INSPECT "old_inspect"   /* its inspect: the settings a rollback goes back to */
#define JR_OLD_IMAGE_INSPECT "old_image_inspect"
#define JR_OLD_DIGEST "old_digest"
#define JR_IMAGE "image"               /* Config.Image of the replacement */
#define JR_NEW_IMAGE_ID "new_image_id" /* the local image the replacement must run */
#define JR_NEW_DIGEST "new_digest"
#define JR_NEW_ID "new_id"             /* the replacement's ID, once created */
#define JR_TEMP_NAME "temp_name"       /* the aside (recreate) or side-by-side (blue-green) name */
#define JR_NEW_TEMP_NAME "new_temp_name" /* recreate: the replacement's name until the old one is set aside */
#define JR_JOIN "join"                 /* network -> endpoint config the replacement is given at cutover */
#define JR_SPEC_INSPECT "spec_inspect" /* rollback: build the replacement from this inspect */
#define JR_SPEC_IMAGE_INSPECT "spec_image_inspect"
#define JR_BACKUP "backup"             /* migrate: the volume backup's directory */
#define JR_STARTED "started"
#define JR_FINISHED "finished"
#define JR_OUTCOME "outcome"           /* updated, rolled-back, failed: only once finished */
#define JR_ERROR "error"
#define JR_RECOVERED "recovered"       /* true when a later run finished or undid it */
#define JR_OLD_IMAGE "old_image"       /* public records: the reference the container left */
#define JR_TARGET "target"             /* a Swarm record: "service" */
#define JR_SERVICE_ID "service_id"
#define JR_SWARM_BEFORE "swarm_before" /* the service's Spec version before refit's update */
#define JR_OLD_SPEC "old_spec"         /* the service's spec before its update */

/* The string under KEY in REC, or NULL. */
static inline const char *jr_str(json_t *rec, const char *key)
{
	return json_string_value(json_object_get(rec, key));
}

/* REC's outcome (ENTRY_UPDATED, ENTRY_ROLLED_BACK, ENTRY_FAILED); _ENTRY_STATUS_INVALID while in flight. */
enum entry_status jr_outcome(json_t *rec);

/* Is REC a change of container NAME: under its name, or the new name it was given? */
bool jr_concerns(json_t *rec, const char *name);

/* The name the container of REC has after it: the new name when it was given one. */
const char *jr_final_name(json_t *rec);

/* The last record of container NAME in HIST (oldest first), or NULL: its last change (borrowed). */
json_t *jr_last_change(json_t *hist, const char *name);

#endif
