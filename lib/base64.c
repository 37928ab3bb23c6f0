/* base64.c: standard base64 (RFC 4648, with padding), as Kubernetes stores Secrets. */
#include "lib.h"

#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_encode(const void *data, size_t n, struct sbuf *out)
{
	const unsigned char *in = data;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? in[i + 2] : 0);
		sb_addc(out, alphabet[v >> 18 & 63]);
		sb_addc(out, alphabet[v >> 12 & 63]);
		sb_addc(out, i + 1 < n ? alphabet[v >> 6 & 63] : '=');
		sb_addc(out, i + 2 < n ? alphabet[v & 63] : '=');
	}
}

bool base64_decode(const char *in, size_t len, struct sbuf *out)
{
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == '=' || c == '\n' || c == '\r')
			continue;
		const char *pos = c ? strchr(alphabet, c) : NULL;
		if (!pos)
			return false;
		acc = (acc << 6) | (uint32_t)(pos - alphabet);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			sb_addc(out, (char)((acc >> bits) & 0xff));
		}
	}
	return true;
}
