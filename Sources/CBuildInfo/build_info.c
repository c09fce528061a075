#include "build_info.h"

// Package.swift defines both for this file alone, so a new commit recompiles only it.
#ifndef VIGIL_VERSION
#define VIGIL_VERSION "0.0.0"
#endif
#ifndef VIGIL_COMMIT
#define VIGIL_COMMIT "unknown"
#endif

const char *vigil_build_version(void) { return VIGIL_VERSION; }
const char *vigil_build_commit(void) { return VIGIL_COMMIT; }
