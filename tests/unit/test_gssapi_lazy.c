/* test_gssapi_lazy.c: store/gssapi_lazy.c — the GSSAPI calls of libgit2 reach
 * libgssapi_krb5.so.2, loaded only then, and behave as the library's own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* RFC 2744 */
typedef uint32_t OM_uint32;
typedef struct {
	OM_uint32 length;
	void *elements;
} gss_OID_desc, *gss_OID;
typedef struct {
	size_t count;
	gss_OID elements;
} gss_OID_set_desc, *gss_OID_set;
typedef struct {
	size_t length;
	void *value;
} gss_buffer_desc, *gss_buffer_t;
typedef struct gss_name_struct *gss_name_t;
typedef struct gss_ctx_id_struct *gss_ctx_id_t;

#define GSS_S_COMPLETE 0u
#define GSS_S_CONTINUE_NEEDED 1u
#define GSS_C_GSS_CODE 1
#define GSS_C_MECH_CODE 2
#define GSS_ERROR(x) ((x) & 0xffff0000u)

extern gss_OID GSS_C_NT_HOSTBASED_SERVICE;
OM_uint32 gss_indicate_mechs(OM_uint32 *minor, gss_OID_set *mechs);
OM_uint32 gss_import_name(OM_uint32 *minor, gss_buffer_t name, gss_OID type, gss_name_t *ret);
OM_uint32 gss_init_sec_context(OM_uint32 *minor, void *cred, gss_ctx_id_t *ctx, gss_name_t target,
			       gss_OID mech, OM_uint32 req_flags, OM_uint32 time_req, void *cb,
			       gss_buffer_t in, gss_OID *actual_mech, gss_buffer_t out,
			       OM_uint32 *ret_flags, OM_uint32 *time_rec);
OM_uint32 gss_display_status(OM_uint32 *minor, OM_uint32 status, int type, gss_OID mech,
			     OM_uint32 *msg_ctx, gss_buffer_t out);
OM_uint32 gss_delete_sec_context(OM_uint32 *minor, gss_ctx_id_t *ctx, gss_buffer_t out);
OM_uint32 gss_release_buffer(OM_uint32 *minor, gss_buffer_t buf);
OM_uint32 gss_release_name(OM_uint32 *minor, gss_name_t *name);
OM_uint32 gss_release_oid_set(OM_uint32 *minor, gss_OID_set *set);

#define SONAME "libgssapi_krb5.so.2"

static bool library_loaded(void)
{
	void *h = dlopen(SONAME, RTLD_NOW | RTLD_NOLOAD);
	if (h)
		dlclose(h);
	return h != NULL;
}

/* Runs first: nothing loaded GSSAPI before a call needed it. */
static void test_not_loaded_at_start(void **state)
{
	assert_false(library_loaded());
}

static void test_indicate_mechs_has_kerberos(void **state)
{
	static const char krb5[] = "\x2a\x86\x48\x86\xf7\x12\x01\x02\x02"; /* 1.2.840.113554.1.2.2 */
	OM_uint32 minor = 99;
	gss_OID_set set = NULL;
	assert_int_equal(gss_indicate_mechs(&minor, &set), GSS_S_COMPLETE);
	assert_true(library_loaded());
	assert_non_null(set);
	bool found = false;
	for (size_t i = 0; i < set->count; i++)
		found |= set->elements[i].length == sizeof(krb5) - 1 &&
			 memcmp(set->elements[i].elements, krb5, sizeof(krb5) - 1) == 0;
	assert_true(found);
	assert_int_equal(gss_release_oid_set(&minor, &set), GSS_S_COMPLETE);
	assert_null(set);
}

/* libgit2 imports "HTTP@host" with GSS_C_NT_HOSTBASED_SERVICE, ours. */
static void test_import_hostbased_name(void **state)
{
	static const unsigned char oid[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x01, 0x04 };
	char text[] = "HTTP@git.example.org";
	gss_buffer_desc buf = { strlen(text), text };
	gss_name_t name = NULL;
	OM_uint32 minor = 0;
	assert_int_equal(GSS_C_NT_HOSTBASED_SERVICE->length, sizeof(oid));
	assert_memory_equal(GSS_C_NT_HOSTBASED_SERVICE->elements, oid, sizeof(oid));
	assert_int_equal(gss_import_name(&minor, &buf, GSS_C_NT_HOSTBASED_SERVICE, &name), GSS_S_COMPLETE);
	assert_non_null(name);
	assert_int_equal(gss_release_name(&minor, &name), GSS_S_COMPLETE);
	assert_null(name);
}

/* No Kerberos ticket: the context fails as the library says, and its message comes
 * through gss_display_status. */
static void test_init_context_without_ticket(void **state)
{
	char text[] = "HTTP@git.example.org";
	gss_buffer_desc buf = { strlen(text), text }, in = { 0, NULL }, out = { 0, NULL }, msg = { 0, NULL };
	gss_name_t name = NULL;
	gss_ctx_id_t ctx = NULL;
	OM_uint32 minor = 0, msg_ctx = 0;
	setenv("KRB5CCNAME", "FILE:/nonexistent/gitops-test-ccache", 1);
	setenv("KRB5_CONFIG", "/dev/null", 1);
	assert_int_equal(gss_import_name(&minor, &buf, GSS_C_NT_HOSTBASED_SERVICE, &name), GSS_S_COMPLETE);
	OM_uint32 major = gss_init_sec_context(&minor, NULL, &ctx, name, NULL, 0, 0, NULL, &in, NULL,
					       &out, NULL, NULL);
	assert_true(GSS_ERROR(major));
	assert_int_equal(gss_display_status(&minor, major, GSS_C_GSS_CODE, NULL, &msg_ctx, &msg),
			 GSS_S_COMPLETE);
	assert_true(msg.length > 0);
	assert_int_equal(gss_release_buffer(&minor, &msg), GSS_S_COMPLETE);
	assert_int_equal(gss_release_buffer(&minor, &out), GSS_S_COMPLETE);
	if (ctx)
		gss_delete_sec_context(&minor, &ctx, NULL);
	assert_null(ctx);
	assert_int_equal(gss_release_name(&minor, &name), GSS_S_COMPLETE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_loaded_at_start),
		cmocka_unit_test(test_indicate_mechs_has_kerberos),
		cmocka_unit_test(test_import_hostbased_name),
		cmocka_unit_test(test_init_context_without_ticket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
