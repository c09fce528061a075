#ifndef VIGIL_BUILD_INFO_H
#define VIGIL_BUILD_INFO_H

/// The version (the VERSION file) and the commit vigil was built from, as Package.swift
/// found them at build time; "unknown" for a build outside a git checkout without
/// VIGIL_COMMIT set.
const char *vigil_build_version(void);
const char *vigil_build_commit(void);

#endif
