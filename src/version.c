/* refit's version: REFIT_VERSION is defined for this file alone (Makefile). */
#include "refit/version.h"

#ifndef REFIT_VERSION
#error "REFIT_VERSION is not defined (the Makefile passes scripts/version's answer)"
#endif

const char *const refit_version = REFIT_VERSION;
const char *const refit_user_agent = "refit/" REFIT_VERSION;
const char *const refit_fleet_user_agent = "refit-fleet/" REFIT_VERSION;
const char *const refit_user_agent_header = "User-Agent: refit/" REFIT_VERSION;
