/* version.c: the version string, rebuilt on every build (Makefile: FORCE). */
#include "lib.h"

#ifndef GITOPS_VERSION
#define GITOPS_VERSION "unknown"
#endif

const char *gitops_version(void)
{
	return GITOPS_VERSION;
}
