/* Reading journal records: the accessors of journal-record.h. */
#include <string.h>

#include "refit/journal-record.h"

enum entry_status jr_outcome(json_t *rec)
{
	enum entry_status s = entry_status_from_string(jr_str(rec, JR_OUTCOME));

	return s == ENTRY_UPDATED || s == ENTRY_ROLLED_BACK || s == ENTRY_FAILED ? s : _ENTRY_STATUS_INVALID;
}

bool jr_concerns(json_t *rec, const char *name)
{
	const char *c = jr_str(rec, JR_CONTAINER), *nn = jr_str(rec, JR_NEW_NAME);

	return name && ((c && strcmp(c, name) == 0) || (nn && strcmp(nn, name) == 0));
}

const char *jr_final_name(json_t *rec)
{
	const char *nn = jr_str(rec, JR_NEW_NAME);

	return nn ? nn : jr_str(rec, JR_CONTAINER);
}

json_t *jr_last_change(json_t *hist, const char *name)
{
	for (size_t i = json_array_size(hist); i-- > 0;)
		if (jr_concerns(json_array_get(hist, i), name))
			return json_array_get(hist, i);
	return NULL;
}
