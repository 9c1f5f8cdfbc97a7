/* Dependencies between containers: labels, compose depends_on, links, network_mode container:. */
#ifndef REFIT_DEPENDS_H
#define REFIT_DEPENDS_H

#include <jansson.h>

#define DEPENDS_MAX 64 /* dependencies read per container */

/*
 * Names of the containers that the container of inspect INS depends on,
 * among ALL (an object: name -> inspect of every container considered):
 * refit.depends-on / com.centurylinklabs.watchtower.depends-on (comma
 * separated names), compose's com.docker.compose.depends_on (service names
 * of the same project, "svc:condition:restart,..."), links, and
 * network_mode container:NAME-or-ID. Only names present in ALL are given.
 * Returns a new array of strings.
 */
json_t *depends_of(json_t *ins, json_t *all);

/*
 * Order NAMES (an array of strings, all keys of ALL) so that every
 * container comes after the ones it depends on; a cycle is broken at the
 * name listed first. Returns a new array.
 */
json_t *depends_order(json_t *names, json_t *all);

#endif
