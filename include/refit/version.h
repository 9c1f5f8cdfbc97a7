/*
 * refit's version, fixed when src/version.c is compiled: `git describe
 * --tags --dirty` of the checkout, or the release tarball's VERSION file
 * (scripts/version). Only version.c sees the build's version, so a new
 * commit recompiles one file.
 */
#ifndef REFIT_VERSION_H
#define REFIT_VERSION_H

/* "0.2.0", "0.2.0-3-g1a2b3c4", "0.2.0-3-g1a2b3c4-dirty" */
extern const char *const refit_version;

/* The User-Agent of refit's requests ("refit/VERSION") and of refit fleet's ("refit-fleet/VERSION"). */
extern const char *const refit_user_agent;
extern const char *const refit_fleet_user_agent;

/* "User-Agent: refit/VERSION", for a header list. */
extern const char *const refit_user_agent_header;

#endif
