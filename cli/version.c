/* version.c: `gitops version`. */
#include "cli/cli.h"

#include <git2.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <yaml.h>

int cmd_version(struct cli_args *a)
{
	int major, minor, rev;
	git_libgit2_version(&major, &minor, &rev);
	printf("gitops %s\n", gitops_version());
	printf("libgit2 %d.%d.%d, libyaml %s, jansson %s, %s\n", major, minor, rev,
	       yaml_get_version_string(), jansson_version_str(), OpenSSL_version(OPENSSL_VERSION));
	return 0;
}
