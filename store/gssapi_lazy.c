/* gssapi_lazy.c: the GSSAPI functions the static libgit2 calls, forwarded to
 * libgssapi_krb5.so.2, which is dlopen()ed at the first call. */
/*
 * libgit2 uses GSSAPI for one thing: "Negotiate" (Kerberos/SPNEGO) authentication to
 * an HTTP(S) remote. Debian ships no static GSSAPI, so linking it would load GSSAPI
 * and Kerberos — seven shared libraries — into every start of gitops, ~0.4 ms of the
 * ~1.4 ms one start costs (docs/architecture.md, "Start-up cost"), for a feature only
 * a Kerberos-protected remote needs. Here are the eight functions and the one object
 * libgit2 refers to; each call loads the library once (pthread_once) and forwards.
 * Without the library every call fails with GSS_S_FAILURE, minor status 0, and
 * libgit2 reports that it could not initialize GSSAPI. (Negotiate needs default
 * credentials, which store_cred_cb does not offer today: libgit2 does not get here
 * yet. Forwarding rather than failing keeps the day it does working.)
 *
 * The types follow RFC 2744 (the C bindings), which fixes this ABI; Kerberos' headers
 * are not a build dependency. GSS_C_NT_HOSTBASED_SERVICE, the name type libgit2 passes
 * to gss_import_name(), is ours (the same OID value); it is swapped for the library's
 * own object on the way through.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef uint32_t OM_uint32;
typedef struct {
	OM_uint32 length;
	void *elements;
} gss_OID_desc, *gss_OID;
typedef struct gss_OID_set_desc_struct *gss_OID_set;
typedef struct gss_buffer_desc_struct *gss_buffer_t;
typedef struct gss_name_struct *gss_name_t;
typedef struct gss_ctx_id_struct *gss_ctx_id_t;
typedef struct gss_cred_id_struct *gss_cred_id_t;
typedef struct gss_channel_bindings_struct *gss_channel_bindings_t;

#define GSS_S_FAILURE (13u << 16)
#define GSSAPI_SONAME "libgssapi_krb5.so.2"

/* {iso(1) member-body(2) US(840) mit(113554) infosys(1) gssapi(2) generic(1)
 * service_name(4)}, RFC 2744 section 4.3 */
static gss_OID_desc hostbased_service = { 10, (void *)"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04" };
gss_OID GSS_C_NT_HOSTBASED_SERVICE = &hostbased_service;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void *lib;

static void load(void)
{
	lib = dlopen(GSSAPI_SONAME, RTLD_NOW | RTLD_LOCAL);
}

/* The library's symbol name, or NULL when the library cannot be loaded. */
static void *sym(const char *name)
{
	pthread_once(&once, load);
	return lib ? dlsym(lib, name) : NULL;
}

/* Forward a call to the library's function of the same name (type f), or fail. */
#define FORWARD(name, f, minor, args)              \
	do {                                       \
		f fn_ = (f)sym(#name);             \
		if (!fn_) {                        \
			if (minor)                 \
				*(minor) = 0;      \
			return GSS_S_FAILURE;      \
		}                                  \
		return fn_ args;                   \
	} while (0)

OM_uint32 gss_indicate_mechs(OM_uint32 *minor, gss_OID_set *mechs);
OM_uint32 gss_import_name(OM_uint32 *minor, gss_buffer_t name, gss_OID type, gss_name_t *ret);
OM_uint32 gss_init_sec_context(OM_uint32 *minor, gss_cred_id_t cred, gss_ctx_id_t *ctx,
			       gss_name_t target, gss_OID mech, OM_uint32 req_flags,
			       OM_uint32 time_req, gss_channel_bindings_t cb, gss_buffer_t in,
			       gss_OID *actual_mech, gss_buffer_t out, OM_uint32 *ret_flags,
			       OM_uint32 *time_rec);
OM_uint32 gss_display_status(OM_uint32 *minor, OM_uint32 status, int type, gss_OID mech,
			     OM_uint32 *msg_ctx, gss_buffer_t out);
OM_uint32 gss_delete_sec_context(OM_uint32 *minor, gss_ctx_id_t *ctx, gss_buffer_t out);
OM_uint32 gss_release_buffer(OM_uint32 *minor, gss_buffer_t buf);
OM_uint32 gss_release_name(OM_uint32 *minor, gss_name_t *name);
OM_uint32 gss_release_oid_set(OM_uint32 *minor, gss_OID_set *set);

OM_uint32 gss_indicate_mechs(OM_uint32 *minor, gss_OID_set *mechs)
{
	typedef OM_uint32 (*f)(OM_uint32 *, gss_OID_set *);
	FORWARD(gss_indicate_mechs, f, minor, (minor, mechs));
}

OM_uint32 gss_import_name(OM_uint32 *minor, gss_buffer_t name, gss_OID type, gss_name_t *ret)
{
	typedef OM_uint32 (*f)(OM_uint32 *, gss_buffer_t, gss_OID, gss_name_t *);
	if (type == &hostbased_service) { /* the library's own object */
		gss_OID *theirs = sym("GSS_C_NT_HOSTBASED_SERVICE");
		if (theirs && *theirs)
			type = *theirs;
	}
	FORWARD(gss_import_name, f, minor, (minor, name, type, ret));
}

OM_uint32 gss_init_sec_context(OM_uint32 *minor, gss_cred_id_t cred, gss_ctx_id_t *ctx,
			       gss_name_t target, gss_OID mech, OM_uint32 req_flags,
			       OM_uint32 time_req, gss_channel_bindings_t cb, gss_buffer_t in,
			       gss_OID *actual_mech, gss_buffer_t out, OM_uint32 *ret_flags,
			       OM_uint32 *time_rec)
{
	typedef OM_uint32 (*f)(OM_uint32 *, gss_cred_id_t, gss_ctx_id_t *, gss_name_t, gss_OID,
			       OM_uint32, OM_uint32, gss_channel_bindings_t, gss_buffer_t,
			       gss_OID *, gss_buffer_t, OM_uint32 *, OM_uint32 *);
	FORWARD(gss_init_sec_context, f, minor,
		(minor, cred, ctx, target, mech, req_flags, time_req, cb, in, actual_mech, out,
		 ret_flags, time_rec));
}

OM_uint32 gss_display_status(OM_uint32 *minor, OM_uint32 status, int type, gss_OID mech,
			     OM_uint32 *msg_ctx, gss_buffer_t out)
{
	typedef OM_uint32 (*f)(OM_uint32 *, OM_uint32, int, gss_OID, OM_uint32 *, gss_buffer_t);
	FORWARD(gss_display_status, f, minor, (minor, status, type, mech, msg_ctx, out));
}

OM_uint32 gss_delete_sec_context(OM_uint32 *minor, gss_ctx_id_t *ctx, gss_buffer_t out)
{
	typedef OM_uint32 (*f)(OM_uint32 *, gss_ctx_id_t *, gss_buffer_t);
	FORWARD(gss_delete_sec_context, f, minor, (minor, ctx, out));
}

OM_uint32 gss_release_buffer(OM_uint32 *minor, gss_buffer_t buf)
{
	typedef OM_uint32 (*f)(OM_uint32 *, gss_buffer_t);
	FORWARD(gss_release_buffer, f, minor, (minor, buf));
}

OM_uint32 gss_release_name(OM_uint32 *minor, gss_name_t *name)
{
	typedef OM_uint32 (*f)(OM_uint32 *, gss_name_t *);
	FORWARD(gss_release_name, f, minor, (minor, name));
}

OM_uint32 gss_release_oid_set(OM_uint32 *minor, gss_OID_set *set)
{
	typedef OM_uint32 (*f)(OM_uint32 *, gss_OID_set *);
	FORWARD(gss_release_oid_set, f, minor, (minor, set));
}
