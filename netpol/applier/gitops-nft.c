// SPDX-License-Identifier: GPL-2.0-only
/* gitops-nft: the nftables applier. A separate executable under GPL-2.0-only
 * because it links libnftables (GPL-2.0-only), which must never be combined with
 * OpenSSL 3 (Apache-2.0) in one binary; see docs/licensing.md and LICENSE.gitops-nft.
 *
 * Usage: gitops-nft [--check] < transaction     apply (or dry-run) one nft script
 *        gitops-nft --list FAMILY TABLE           print a table, or nothing if absent
 *
 * The script is read whole from stdin (at most 256 MiB) and run as ONE libnftables
 * transaction: either all of it applies or none of it. Errors from libnftables are
 * printed on stdout; exit 0 on success, 1 when nftables refused, 2 on usage/IO errors.
 * It links only libnftables and libc, and takes no part of gitops' code.
 */
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_INPUT (256u << 20)

static char *read_stdin(size_t *ret_len)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	for (;;) {
		if (cap - len < 2) {
			if (cap >= MAX_INPUT) {
				free(buf);
				return NULL;
			}
			char *n = realloc(buf, cap * 2);
			if (!n) {
				free(buf);
				return NULL;
			}
			buf = n;
			cap *= 2;
		}
		ssize_t r = read(0, buf + len, cap - len - 1);
		if (r < 0) {
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	*ret_len = len;
	return buf;
}

static int run(struct nft_ctx *nft, const char *cmd)
{
	nft_ctx_buffer_output(nft);
	nft_ctx_buffer_error(nft);
	int r = nft_run_cmd_from_buffer(nft, cmd);
	fputs(nft_ctx_get_output_buffer(nft), stdout);
	fputs(nft_ctx_get_error_buffer(nft), stdout);
	return r == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	bool check = false;
	if (argc == 4 && strcmp(argv[1], "--list") == 0) {
		if (strcmp(argv[2], "ip") && strcmp(argv[2], "ip6") && strcmp(argv[2], "inet"))
			return 2;
		struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
		if (!nft)
			return 2;
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "list table %s %s", argv[2], argv[3]);
		nft_ctx_buffer_output(nft);
		nft_ctx_buffer_error(nft);
		int r = nft_run_cmd_from_buffer(nft, cmd);
		if (r == 0)
			fputs(nft_ctx_get_output_buffer(nft), stdout);
		nft_ctx_free(nft);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--check") == 0)
		check = true;
	else if (argc != 1) {
		fprintf(stderr, "usage: gitops-nft [--check] < script | gitops-nft --list FAMILY TABLE\n");
		return 2;
	}
	size_t len;
	char *script = read_stdin(&len);
	if (!script) {
		fprintf(stdout, "gitops-nft: cannot read the transaction from stdin\n");
		return 2;
	}
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!nft) {
		free(script);
		return 2;
	}
	if (check)
		nft_ctx_set_dry_run(nft, true);
	int r = run(nft, script);
	nft_ctx_free(nft);
	free(script);
	return r;
}
