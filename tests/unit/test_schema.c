/* test_schema.c: the generated schema tables and their lookups (api/schema.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api/internal.h"

static const struct schema_type *type(const char *name)
{
	int i = schema_type_index(name);
	assert_true(i >= 0);
	return &schema_types[i];
}

static const struct schema_field *field(const char *tname, const char *fname)
{
	const struct schema_field *f = schema_field(type(tname), fname);
	assert_non_null(f);
	assert_string_equal(f->name, fname);
	return f;
}

static bool enum_has(const struct schema_field *f, const char *v)
{
	if (!f->enumv)
		return false;
	for (const char *const *e = f->enumv; *e; e++)
		if (strcmp(*e, v) == 0)
			return true;
	return false;
}

static void test_lookup(void **state)
{
	assert_int_equal(schema_type_index("nope"), -1);
	assert_int_equal(schema_type_index(""), -1);
	assert_int_equal(schema_type_index(NULL), -1);
	int i = schema_type_index("V1Container");
	assert_true(i >= 0 && (size_t)i < schema_ntypes);
	assert_string_equal(schema_types[i].name, "V1Container");
	const struct schema_type *t = &schema_types[i];
	assert_null(schema_field(t, "nope"));
	assert_null(schema_field(t, ""));
	assert_null(schema_field(t, "Name"));      /* case-sensitive */
	assert_null(schema_field(t, "zzzz"));      /* past the last */
	assert_null(schema_field(t, "aaaa"));      /* before the first */
	assert_null(schema_field(t, NULL));
	/* every field is found by the binary search, first and last included */
	for (size_t k = 0; k < schema_ntypes; k++)
		for (size_t j = 0; j < schema_types[k].nfields; j++)
			assert_ptr_equal(schema_field(&schema_types[k], schema_types[k].fields[j].name),
					 &schema_types[k].fields[j]);
}

static void test_roots(void **state)
{
	static const char *const roots[] = {
		"V1Namespace", "V1Node", "V1Pod", "V1Deployment", "V1ReplicaSet",
		"V1DaemonSet", "V1StatefulSet", "V1Job", "V1CronJob", "V1Service",
		"V1Endpoints", "V1NetworkPolicy", "V1ConfigMap", "V1Secret",
		"V1ServiceAccount", "V1PersistentVolumeClaim", "V1HorizontalPodAutoscaler",
		"V2HorizontalPodAutoscaler", "V1PriorityClass", "V1ResourceQuota",
		"V1LimitRange", "V1LabelSelector", "V1ObjectMeta",
	};
	for (size_t i = 0; i < ARRAY_SIZE(roots); i++)
		assert_true(schema_type_index(roots[i]) >= 0);
	/* keeps status of top-level kinds */
	const struct schema_field *f = field("V1Deployment", "status");
	assert_int_equal(f->type, FT_OBJECT);
	assert_int_equal(f->ref, schema_type_index("V1DeploymentStatus"));
	/* autoscaling/v2 comes from v2beta2 under the GA names */
	assert_int_equal(schema_type_index("V2beta2HorizontalPodAutoscaler"), -1);
	f = field("V2HorizontalPodAutoscalerSpec", "behavior");
	assert_int_equal(f->ref, schema_type_index("V2HorizontalPodAutoscalerBehavior"));
}

static void test_container(void **state)
{
	const struct schema_field *f = field("V1Container", "imagePullPolicy");
	assert_int_equal(f->type, FT_STRING);
	assert_true(enum_has(f, "Always") && enum_has(f, "IfNotPresent") && enum_has(f, "Never"));
	assert_false(enum_has(f, "always"));
	assert_int_equal(f->flags & FF_NEWER, 0);

	f = field("V1Container", "name");
	assert_int_equal(f->type, FT_STRING);
	assert_true(f->flags & FF_REQUIRED);
	assert_null(f->enumv);
	assert_false(field("V1Container", "image")->flags & FF_REQUIRED);

	f = field("V1Container", "env");
	assert_int_equal(f->type, FT_ARRAY);
	assert_int_equal(f->elem, FT_OBJECT);
	assert_int_equal(f->ref, schema_type_index("V1EnvVar"));

	f = field("V1Container", "restartPolicy");
	assert_true(f->flags & FF_NEWER);
	assert_true(enum_has(f, "Always"));
	assert_true(field("V1PodSpec", "restartPolicy")->enumv != f->enumv);
	assert_true(enum_has(field("V1PodSpec", "restartPolicy"), "OnFailure"));

	/* "exec" is python's "_exec" */
	assert_int_equal(field("V1Probe", "exec")->ref, schema_type_index("V1ExecAction"));
}

static void test_newer(void **state)
{
	const struct schema_field *f = field("V1Probe", "grpc");
	assert_int_equal(f->type, FT_OBJECT);
	assert_true(f->flags & FF_NEWER);
	assert_int_equal(f->ref, schema_type_index("V1GRPCAction"));
	f = field("V1GRPCAction", "port");
	assert_int_equal(f->type, FT_INT);
	assert_true(f->flags & FF_REQUIRED);

	f = field("V1JobSpec", "podFailurePolicy");
	assert_true(f->flags & FF_NEWER);
	f = field("V1PodFailurePolicy", "rules");
	assert_int_equal(f->type, FT_ARRAY);
	assert_int_equal(f->ref, schema_type_index("V1PodFailurePolicyRule"));
	f = field("V1PodFailurePolicyRule", "action");
	assert_true(enum_has(f, "FailJob") && enum_has(f, "Count"));
	f = field("V1PodFailurePolicyOnExitCodesRequirement", "values");
	assert_int_equal(f->type, FT_ARRAY);
	assert_int_equal(f->elem, FT_INT);

	assert_true(field("V1Handler", "sleep")->flags & FF_NEWER);
	assert_true(field("V1CronJobSpec", "timeZone")->flags & FF_NEWER);
	assert_int_equal(field("V1RollingUpdateStatefulSetStrategy", "maxUnavailable")->type,
			 FT_INT_OR_STRING);
	assert_true(enum_has(field("V1AppArmorProfile", "type"), "Localhost"));
	assert_int_equal(field("V1PodSpec", "resourceClaims")->elem, FT_ANY);
}

static void test_special_types(void **state)
{
	assert_int_equal(field("V1ServicePort", "targetPort")->type, FT_INT_OR_STRING);
	assert_int_equal(field("V1HTTPGetAction", "port")->type, FT_INT_OR_STRING);
	assert_int_equal(field("V1RollingUpdateDeployment", "maxSurge")->type, FT_INT_OR_STRING);
	assert_int_equal(field("V1ContainerPort", "containerPort")->type, FT_INT);
	assert_int_equal(field("V1ManagedFieldsEntry", "fieldsV1")->type, FT_ANY);

	const struct schema_field *f = field("V1ResourceRequirements", "limits");
	assert_int_equal(f->type, FT_MAP);
	assert_int_equal(f->elem, FT_QUANTITY);
	assert_int_equal(f->ref, -1);
	assert_int_equal(field("V1EmptyDirVolumeSource", "sizeLimit")->type, FT_QUANTITY);
	assert_int_equal(field("V1LimitRangeItem", "maxLimitRequestRatio")->elem, FT_QUANTITY);

	f = field("V1Secret", "data");
	assert_int_equal(f->type, FT_MAP);
	assert_int_equal(f->elem, FT_BYTES);
	assert_int_equal(field("V1Secret", "stringData")->elem, FT_STRING);
	assert_null(field("V1Secret", "type")->enumv);
	assert_int_equal(field("V1ConfigMap", "binaryData")->elem, FT_BYTES);
	assert_int_equal(field("V1ConfigMap", "data")->elem, FT_STRING);
	assert_int_equal(field("V1ObjectMeta", "creationTimestamp")->type, FT_TIME);

	f = field("V1ServiceSpec", "ipFamilies");
	assert_int_equal(f->type, FT_ARRAY);
	assert_int_equal(f->elem, FT_STRING);
	assert_true(enum_has(f, "IPv6"));
	f = field("V1EmptyDirVolumeSource", "medium");
	assert_true(enum_has(f, "") && enum_has(f, "Memory"));
}

/* Invariants of the whole table: sorted, refs in range and consistent. */
static void test_invariants(void **state)
{
	assert_true(schema_ntypes > 200);
	for (size_t i = 0; i < schema_ntypes; i++) {
		const struct schema_type *t = &schema_types[i];
		if (i > 0)
			assert_true(strcmp(schema_types[i - 1].name, t->name) < 0);
		assert_true(t->nfields > 0);
		for (size_t j = 0; j < t->nfields; j++) {
			const struct schema_field *f = &t->fields[j];
			if (j > 0)
				assert_true(strcmp(t->fields[j - 1].name, f->name) < 0);
			assert_true(f->type >= FT_STRING && f->type <= FT_ANY);
			bool container = f->type == FT_ARRAY || f->type == FT_MAP;
			bool object = f->type == FT_OBJECT || (container && f->elem == FT_OBJECT);
			if (container)
				assert_true(f->elem >= FT_STRING && f->elem <= FT_ANY &&
					    f->elem != FT_ARRAY && f->elem != FT_MAP);
			else
				assert_int_equal(f->elem, 0);
			if (object)
				assert_true(f->ref >= 0 && (size_t)f->ref < schema_ntypes);
			else
				assert_int_equal(f->ref, -1);
			if (f->enumv)
				assert_true(f->type == FT_STRING ||
					    (f->type == FT_ARRAY && f->elem == FT_STRING));
			assert_int_equal(f->flags & ~(FF_REQUIRED | FF_NEWER), 0);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_roots),
		cmocka_unit_test(test_container),
		cmocka_unit_test(test_newer),
		cmocka_unit_test(test_special_types),
		cmocka_unit_test(test_invariants),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
