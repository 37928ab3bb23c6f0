#!/usr/bin/python3
"""genschema.py: generate api/schema_gen.c, the schema tables of api/internal.h.

Usage (what `make schema` runs; needs Debian's python3-kubernetes, so use the
system interpreter, not a pyenv one):

    /usr/bin/python3 api/gen/genschema.py > api/schema_gen.c

Source of truth: the model classes of python3-kubernetes 22.6.0 (Kubernetes v1.22).
Each class has `openapi_types` (python attribute -> type string such as 'str',
'list[V1Container]', 'dict(str, str)', 'object') and `attribute_map` (python
attribute -> JSON name); a field is required when its setter rejects None.
Starting from ROOTS, every model reachable through field types is emitted, and
nothing else.

The python models lose some of Go's types (IntOrString and RawExtension both
become 'object'; Quantity and []byte become 'str') and carry no enums and
nothing newer than v1.22. The hand-written overlay below puts that back:
OVERRIDES (types), ENUMS (allowed values), NEWER_FIELDS and NEWER_TYPES (fields
added after v1.22, flagged FF_NEWER). The generator fails on any overlay entry
that does not match the models, so a typo or a drifted model cannot pass silently.

Output is deterministic: types sorted by name, fields by JSON name (Python's
str order on these ASCII names is strcmp's order).
"""
import inspect
import re
import sys

try:
    import kubernetes
    from kubernetes.client import models
except ImportError:
    sys.exit("genschema: needs Debian's python3-kubernetes; run with /usr/bin/python3")

K8S_PYTHON_VERSION = "22.6.0"

# Root type of every kind we accept. autoscaling/v2 went GA in Kubernetes 1.23
# with the shape of v2beta2, which is all 22.6.0 has: V2beta2* models are
# emitted under the V2* names (see out_name).
ROOTS = [
    "V1Namespace", "V1Node", "V1Pod", "V1Deployment", "V1ReplicaSet",
    "V1DaemonSet", "V1StatefulSet", "V1Job", "V1CronJob", "V1Service",
    "V1Endpoints", "V1NetworkPolicy", "V1ConfigMap", "V1Secret",
    "V1ServiceAccount", "V1PersistentVolumeClaim", "V1HorizontalPodAutoscaler",
    "V2HorizontalPodAutoscaler", "V1PriorityClass", "V1ResourceQuota",
    "V1LimitRange",
]

# ---- overlay 1: types the python models lose --------------------------------
#
# (type, JSON name) -> (python type expected, type to emit). Besides the python
# type strings, the emitted type may use the pseudo types IntOrString, Quantity,
# Bytes and any (FT_INT_OR_STRING, FT_QUANTITY, FT_BYTES, FT_ANY).
#
# Every python 'object' field reachable from ROOTS, and what it became:
#   V1ServicePort.targetPort                -> IntOrString
#   V1HTTPGetAction.port                    -> IntOrString
#   V1TCPSocketAction.port                  -> IntOrString
#   V1NetworkPolicyPort.port                -> IntOrString
#   V1RollingUpdateDeployment.maxSurge      -> IntOrString
#   V1RollingUpdateDeployment.maxUnavailable -> IntOrString
#   V1RollingUpdateDaemonSet.maxSurge       -> IntOrString
#   V1RollingUpdateDaemonSet.maxUnavailable -> IntOrString
#   V1ManagedFieldsEntry.fieldsV1           -> any (FieldsV1 is free-form JSON)
# (V1ContainerPort.containerPort is a plain 'int' in the models, and stays so.)
# An 'object' field missing from this table stops the generator.
INT_OR_STRING = ("object", "IntOrString")
OVERRIDES = {
    ("V1ServicePort", "targetPort"): INT_OR_STRING,
    ("V1HTTPGetAction", "port"): INT_OR_STRING,
    ("V1TCPSocketAction", "port"): INT_OR_STRING,
    ("V1NetworkPolicyPort", "port"): INT_OR_STRING,
    ("V1RollingUpdateDeployment", "maxSurge"): INT_OR_STRING,
    ("V1RollingUpdateDeployment", "maxUnavailable"): INT_OR_STRING,
    ("V1RollingUpdateDaemonSet", "maxSurge"): INT_OR_STRING,
    ("V1RollingUpdateDaemonSet", "maxUnavailable"): INT_OR_STRING,
    ("V1ManagedFieldsEntry", "fieldsV1"): ("object", "any"),

    # Quantities (Go resource.Quantity; core/v1 ResourceList is a map of them).
    ("V1ResourceRequirements", "limits"): ("dict(str, str)", "dict(str, Quantity)"),
    ("V1ResourceRequirements", "requests"): ("dict(str, str)", "dict(str, Quantity)"),
    ("V1ResourceQuotaSpec", "hard"): ("dict(str, str)", "dict(str, Quantity)"),
    ("V1ResourceQuotaStatus", "hard"): ("dict(str, str)", "dict(str, Quantity)"),
    ("V1ResourceQuotaStatus", "used"): ("dict(str, str)", "dict(str, Quantity)"),
    ("V1LimitRangeItem", "default"): ("dict(str, str)", "dict(str, Quantity)"),
    ("V1LimitRangeItem", "defaultRequest"): ("dict(str, str)", "dict(str, Quantity)"),
    ("V1LimitRangeItem", "max"): ("dict(str, str)", "dict(str, Quantity)"),
    ("V1LimitRangeItem", "min"): ("dict(str, str)", "dict(str, Quantity)"),
    ("V1LimitRangeItem", "maxLimitRequestRatio"): ("dict(str, str)", "dict(str, Quantity)"),
    ("V1NodeStatus", "allocatable"): ("dict(str, str)", "dict(str, Quantity)"),
    ("V1NodeStatus", "capacity"): ("dict(str, str)", "dict(str, Quantity)"),
    ("V1PersistentVolumeClaimStatus", "capacity"): ("dict(str, str)", "dict(str, Quantity)"),
    ("V1PodSpec", "overhead"): ("dict(str, str)", "dict(str, Quantity)"),
    ("V1EmptyDirVolumeSource", "sizeLimit"): ("str", "Quantity"),
    ("V1ResourceFieldSelector", "divisor"): ("str", "Quantity"),
    ("V2MetricTarget", "value"): ("str", "Quantity"),
    ("V2MetricTarget", "averageValue"): ("str", "Quantity"),
    ("V2MetricValueStatus", "value"): ("str", "Quantity"),
    ("V2MetricValueStatus", "averageValue"): ("str", "Quantity"),

    # Go []byte: base64 in YAML and JSON.
    ("V1Secret", "data"): ("dict(str, str)", "dict(str, Bytes)"),
    ("V1ConfigMap", "binaryData"): ("dict(str, str)", "dict(str, Bytes)"),
}

# ---- overlay 2: enums ---------------------------------------------------------
#
# (type, JSON name) -> allowed values, as Kubernetes' validation accepts them.
# On an array of strings the enum applies to each element. Fields not listed
# are free strings (notably Secret.type, and every status phase/reason).
PROTOCOLS = ["TCP", "UDP", "SCTP"]
SELECTOR_OPS = ["In", "NotIn", "Exists", "DoesNotExist"]
TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
PULL_POLICY = ["Always", "IfNotPresent", "Never"]
TERM_MSG_POLICY = ["File", "FallbackToLogsOnError"]
PREEMPTION = ["PreemptLowerPriority", "Never"]
UPDATE_STRATEGY = ["RollingUpdate", "OnDelete"]
PROFILE_TYPES = ["RuntimeDefault", "Unconfined", "Localhost"]
TRAFFIC_POLICY = ["Cluster", "Local"]
ACCESS_MODES = ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]
QUOTA_SCOPES = ["Terminating", "NotTerminating", "BestEffort", "NotBestEffort",
                "PriorityClass", "CrossNamespacePodAffinity"]
RESIZE_RESTART = ["NotRequired", "RestartContainer"]
ENUMS = {
    ("V1Container", "imagePullPolicy"): PULL_POLICY,
    ("V1Container", "terminationMessagePolicy"): TERM_MSG_POLICY,
    ("V1Container", "restartPolicy"): ["Always"],  # sidecar init containers
    ("V1EphemeralContainer", "imagePullPolicy"): PULL_POLICY,
    ("V1EphemeralContainer", "terminationMessagePolicy"): TERM_MSG_POLICY,
    ("V1EphemeralContainer", "restartPolicy"): ["Always"],
    ("V1ContainerResizePolicy", "restartPolicy"): RESIZE_RESTART,
    ("V1PodSpec", "restartPolicy"): ["Always", "OnFailure", "Never"],
    ("V1PodSpec", "dnsPolicy"): ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
    ("V1PodSpec", "preemptionPolicy"): PREEMPTION,
    ("V1PriorityClass", "preemptionPolicy"): PREEMPTION,
    ("V1PodOS", "name"): ["linux", "windows"],
    ("V1ContainerPort", "protocol"): PROTOCOLS,
    ("V1ServicePort", "protocol"): PROTOCOLS,
    ("V1NetworkPolicyPort", "protocol"): PROTOCOLS,
    ("CoreV1EndpointPort", "protocol"): PROTOCOLS,
    ("V1ServiceSpec", "type"): ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"],
    ("V1ServiceSpec", "sessionAffinity"): ["None", "ClientIP"],
    ("V1ServiceSpec", "externalTrafficPolicy"): TRAFFIC_POLICY,
    ("V1ServiceSpec", "internalTrafficPolicy"): TRAFFIC_POLICY,
    ("V1ServiceSpec", "ipFamilyPolicy"): ["SingleStack", "PreferDualStack", "RequireDualStack"],
    ("V1ServiceSpec", "ipFamilies"): ["IPv4", "IPv6"],
    ("V1DeploymentStrategy", "type"): ["Recreate", "RollingUpdate"],
    ("V1DaemonSetUpdateStrategy", "type"): UPDATE_STRATEGY,
    ("V1StatefulSetUpdateStrategy", "type"): UPDATE_STRATEGY,
    ("V1StatefulSetSpec", "podManagementPolicy"): ["OrderedReady", "Parallel"],
    ("V1StatefulSetPersistentVolumeClaimRetentionPolicy", "whenDeleted"): ["Retain", "Delete"],
    ("V1StatefulSetPersistentVolumeClaimRetentionPolicy", "whenScaled"): ["Retain", "Delete"],
    ("V1CronJobSpec", "concurrencyPolicy"): ["Allow", "Forbid", "Replace"],
    ("V1JobSpec", "completionMode"): ["NonIndexed", "Indexed"],
    ("V1JobSpec", "podReplacementPolicy"): ["TerminatingOrFailed", "Failed"],
    ("V1PodFailurePolicyRule", "action"): ["FailJob", "FailIndex", "Ignore", "Count"],
    ("V1PodFailurePolicyOnExitCodesRequirement", "operator"): ["In", "NotIn"],
    ("V1NetworkPolicySpec", "policyTypes"): ["Ingress", "Egress"],
    ("V1Toleration", "operator"): ["Exists", "Equal"],
    ("V1Toleration", "effect"): TAINT_EFFECTS,
    ("V1Taint", "effect"): TAINT_EFFECTS,
    ("V1NodeSelectorRequirement", "operator"): SELECTOR_OPS + ["Gt", "Lt"],
    ("V1LabelSelectorRequirement", "operator"): SELECTOR_OPS,
    ("V1ScopedResourceSelectorRequirement", "operator"): SELECTOR_OPS,
    ("V1ScopedResourceSelectorRequirement", "scopeName"): QUOTA_SCOPES,
    ("V1ResourceQuotaSpec", "scopes"): QUOTA_SCOPES,
    ("V1LimitRangeItem", "type"): ["Pod", "Container", "PersistentVolumeClaim"],
    ("V1HTTPGetAction", "scheme"): ["HTTP", "HTTPS"],
    ("V1PersistentVolumeClaimSpec", "volumeMode"): ["Filesystem", "Block"],
    ("V1PersistentVolumeClaimSpec", "accessModes"): ACCESS_MODES,
    ("V1PersistentVolumeClaimStatus", "accessModes"): ACCESS_MODES,
    ("V1SeccompProfile", "type"): PROFILE_TYPES,
    ("V1AppArmorProfile", "type"): PROFILE_TYPES,
    ("V1PodSecurityContext", "fsGroupChangePolicy"): ["OnRootMismatch", "Always"],
    ("V1SecurityContext", "procMount"): ["Default", "Unmasked"],
    ("V1TopologySpreadConstraint", "whenUnsatisfiable"): ["DoNotSchedule", "ScheduleAnyway"],
    ("V1TopologySpreadConstraint", "nodeAffinityPolicy"): ["Honor", "Ignore"],
    ("V1TopologySpreadConstraint", "nodeTaintsPolicy"): ["Honor", "Ignore"],
    ("V1VolumeMount", "mountPropagation"): ["None", "HostToContainer", "Bidirectional"],
    # "" is the default (no check); the kubelet also takes "HugePages-<size>",
    # of which the two page sizes of x86-64 and arm64 are listed.
    ("V1EmptyDirVolumeSource", "medium"): ["", "Memory", "HugePages",
                                           "HugePages-2Mi", "HugePages-1Gi"],
    ("V1HostPathVolumeSource", "type"): ["", "DirectoryOrCreate", "Directory", "FileOrCreate",
                                         "File", "Socket", "CharDevice", "BlockDevice"],
    ("V2MetricSpec", "type"): ["ContainerResource", "External", "Object", "Pods", "Resource"],
    ("V2MetricTarget", "type"): ["Utilization", "Value", "AverageValue"],
    ("V2HPAScalingPolicy", "type"): ["Pods", "Percent"],
    ("V2HPAScalingRules", "selectPolicy"): ["Max", "Min", "Disabled"],
}

# ---- overlay 3: fields and types newer than v1.22 -----------------------------
#
# type -> [(JSON name, type string, required)]. Every field from here is
# flagged FF_NEWER, including the fields of the NEWER_TYPES (none of which
# v1.22 knows). Adding a field that the models already have is an error.
CONTAINER_NEWER = [
    ("resizePolicy", "list[V1ContainerResizePolicy]", False),  # 1.27
    ("restartPolicy", "str", False),                           # 1.28, sidecars
]
APPARMOR = [("appArmorProfile", "V1AppArmorProfile", False)]  # 1.30
NEWER_FIELDS = {
    "V1Probe": [("grpc", "V1GRPCAction", False)],              # 1.24
    # V1Handler is postStart/preStop (LifecycleHandler from 1.23 on).
    "V1Handler": [("sleep", "V1SleepAction", False)],          # 1.30
    "V1JobSpec": [
        ("podFailurePolicy", "V1PodFailurePolicy", False),     # 1.26
        ("backoffLimitPerIndex", "int", False),                # 1.29
        ("maxFailedIndexes", "int", False),                    # 1.29
        ("podReplacementPolicy", "str", False),                # 1.29
        ("successPolicy", "V1SuccessPolicy", False),           # 1.31
        ("managedBy", "str", False),                           # 1.32
    ],
    "V1CronJobSpec": [("timeZone", "str", False)],             # 1.27
    "V1StatefulSetSpec": [
        ("persistentVolumeClaimRetentionPolicy",
         "V1StatefulSetPersistentVolumeClaimRetentionPolicy", False),  # 1.27
        ("ordinals", "V1StatefulSetOrdinals", False),          # 1.27
    ],
    "V1RollingUpdateStatefulSetStrategy": [("maxUnavailable", "IntOrString", False)],  # 1.24
    "V1PodSpec": [
        ("os", "V1PodOS", False),                              # 1.25
        ("hostUsers", "bool", False),                          # 1.25
        ("schedulingGates", "list[V1PodSchedulingGate]", False),  # 1.27
        # Its shape changed between 1.26 and 1.28 (`source` was inlined): any.
        ("resourceClaims", "list[any]", False),
    ],
    "V1Container": CONTAINER_NEWER,
    "V1EphemeralContainer": CONTAINER_NEWER,
    "V1TopologySpreadConstraint": [
        ("minDomains", "int", False),                          # 1.25
        ("nodeAffinityPolicy", "str", False),                  # 1.26
        ("nodeTaintsPolicy", "str", False),                    # 1.26
        ("matchLabelKeys", "list[str]", False),                # 1.27
    ],
    "V1PodAffinityTerm": [
        ("matchLabelKeys", "list[str]", False),                # 1.29
        ("mismatchLabelKeys", "list[str]", False),             # 1.29
    ],
    # Container resources.claims (1.26). PVCs share V1ResourceRequirements
    # here, so a PVC with claims passes the schema; the validator may refuse it.
    "V1ResourceRequirements": [("claims", "list[V1ResourceClaim]", False)],
    "V1ServiceSpec": [("trafficDistribution", "str", False)],  # 1.31
    "V1SecurityContext": APPARMOR,
    "V1PodSecurityContext": APPARMOR,
}

NEWER_TYPES = {
    "V1GRPCAction": [("port", "int", True), ("service", "str", False)],
    "V1SleepAction": [("seconds", "int", True)],
    "V1PodFailurePolicy": [("rules", "list[V1PodFailurePolicyRule]", True)],
    "V1PodFailurePolicyRule": [
        ("action", "str", True),
        ("onExitCodes", "V1PodFailurePolicyOnExitCodesRequirement", False),
        ("onPodConditions", "list[V1PodFailurePolicyOnPodConditionsPattern]", False),
    ],
    "V1PodFailurePolicyOnExitCodesRequirement": [
        ("containerName", "str", False),
        ("operator", "str", True),
        ("values", "list[int]", True),
    ],
    # status has no omitempty in Go (so FF_REQUIRED), yet the API server
    # defaults it to "True": defaulting must run before the required check.
    "V1PodFailurePolicyOnPodConditionsPattern": [
        ("type", "str", True),
        ("status", "str", True),
    ],
    "V1SuccessPolicy": [("rules", "list[V1SuccessPolicyRule]", True)],
    "V1SuccessPolicyRule": [
        ("succeededIndexes", "str", False),
        ("succeededCount", "int", False),
    ],
    "V1StatefulSetPersistentVolumeClaimRetentionPolicy": [
        ("whenDeleted", "str", False),
        ("whenScaled", "str", False),
    ],
    "V1StatefulSetOrdinals": [("start", "int", False)],
    "V1PodOS": [("name", "str", True)],
    "V1PodSchedulingGate": [("name", "str", True)],
    "V1ContainerResizePolicy": [
        ("resourceName", "str", True),
        ("restartPolicy", "str", True),
    ],
    "V1ResourceClaim": [("name", "str", True), ("request", "str", False)],
    "V1AppArmorProfile": [
        ("type", "str", True),
        ("localhostProfile", "str", False),
    ],
}

# ---- the generator --------------------------------------------------------------

# Scalar type strings (python's and the overlay's pseudo types) -> enum ftype.
SCALARS = {
    "str": "FT_STRING", "int": "FT_INT", "bool": "FT_BOOL", "float": "FT_FLOAT",
    "datetime": "FT_TIME", "IntOrString": "FT_INT_OR_STRING",
    "Quantity": "FT_QUANTITY", "Bytes": "FT_BYTES", "any": "FT_ANY",
}


def fail(msg):
    sys.exit("genschema: " + msg)


def out_name(py_name):
    """The schema name of a python model: V2beta2X -> V2X (autoscaling/v2)."""
    if py_name.startswith("V2beta2"):
        return "V2" + py_name[len("V2beta2"):]
    return py_name


def py_name(name):
    """Inverse of out_name, for names that are not NEWER_TYPES."""
    if name.startswith("V2") and not name.startswith("V2beta"):
        return "V2beta2" + name[2:]
    return name


class Field:
    def __init__(self, name, ftype, elem, ref, flags, enumv):
        self.name, self.ftype, self.elem, self.ref = name, ftype, elem, ref
        self.flags, self.enumv = flags, enumv


def parse_type(tystr, where):
    """'list[V1Container]' -> ('FT_ARRAY', 'FT_OBJECT', 'V1Container')."""
    for pat, kind in ((r"list\[(.*)\]", "FT_ARRAY"), (r"dict\(str, (.*)\)", "FT_MAP")):
        m = re.fullmatch(pat, tystr)
        if m:
            inner, elem, ref = parse_type(m.group(1), where)
            if inner in ("FT_ARRAY", "FT_MAP"):
                fail(f"{where}: nested containers are not supported: {tystr}")
            return kind, inner, ref
    if tystr == "object":
        fail(f"{where}: python 'object' with no entry in OVERRIDES")
    if tystr in SCALARS:
        return SCALARS[tystr], None, None
    if tystr in NEWER_TYPES:
        return "FT_OBJECT", None, tystr
    if not hasattr(models, tystr):
        fail(f"{where}: unknown model {tystr}")
    return "FT_OBJECT", None, out_name(tystr)


def is_required(cls, attr):
    setter = getattr(cls, attr).fset
    return setter is not None and "must not be `None`" in inspect.getsource(setter)


def model_fields(name, used):
    """[(JSON name, type string, required, newer)] of one type, overlay applied."""
    rows = []
    if name in NEWER_TYPES:
        rows = [(j, t, r, True) for j, t, r in NEWER_TYPES[name]]
    else:
        cls = getattr(models, py_name(name), None)
        if cls is None:
            fail(f"no model for {name}")
        for attr, tystr in sorted(cls.openapi_types.items()):
            json = cls.attribute_map[attr]
            key = (name, json)
            if key in OVERRIDES:
                expect, tystr2 = OVERRIDES[key]
                if tystr != expect:
                    fail(f"{name}.{json}: override expects {expect}, model has {tystr}")
                used.add(("override",) + key)
                tystr = tystr2
            rows.append((json, tystr, is_required(cls, attr), False))
    have = {r[0] for r in rows}
    for json, tystr, req in NEWER_FIELDS.get(name, []):
        if json in have:
            fail(f"{name}.{json}: in NEWER_FIELDS but the v1.22 model has it")
        rows.append((json, tystr, req, True))
    return rows


def build():
    """{type name: [Field]} of every type reachable from ROOTS."""
    used, raw, todo = set(), {}, list(ROOTS)
    while todo:
        name = todo.pop()
        if name in raw:
            continue
        raw[name] = []
        for json, tystr, req, newer in model_fields(name, used):
            ftype, elem, ref = parse_type(tystr, f"{name}.{json}")
            if ref is not None:
                todo.append(ref)
            enumv = ENUMS.get((name, json))
            if enumv is not None:
                used.add(("enum", name, json))
                if ftype != "FT_STRING" and not (ftype == "FT_ARRAY" and elem == "FT_STRING"):
                    fail(f"{name}.{json}: enum on a non-string field")
            flags = (["FF_REQUIRED"] if req else []) + (["FF_NEWER"] if newer else [])
            raw[name].append(Field(json, ftype, elem, ref, flags, enumv))
    check_overlay_used(used, raw)
    return raw


def check_overlay_used(used, types):
    for key in OVERRIDES:
        if ("override",) + key not in used:
            fail(f"OVERRIDES entry {key} matches no reachable field")
    for key in ENUMS:
        if ("enum",) + key not in used:
            fail(f"ENUMS entry {key} matches no reachable field")
    for name in list(NEWER_FIELDS) + list(NEWER_TYPES):
        if name not in types:
            fail(f"overlay type {name} is not reachable from ROOTS")


def c_ident(s):
    return re.sub(r"[^A-Za-z0-9_]", "_", s)


def c_str(s):
    if not re.fullmatch(r"[A-Za-z0-9_.\-/ ]*", s):
        fail(f"unexpected character in {s!r}")
    return f'"{s}"'


def emit(types):
    names = sorted(types)
    index = {n: i for i, n in enumerate(names)}
    out = [
        f"/* api/schema_gen.c: generated by api/gen/genschema.py from python3-kubernetes "
        f"{kubernetes.__version__}; do not edit.",
        " * Regenerate with `make schema`. Types sorted by name, fields by JSON name. */",
        '#include "api/internal.h"',
        "",
    ]
    for name in names:
        fields = sorted(types[name], key=lambda f: f.name)
        for a, b in zip(fields, fields[1:]):
            if a.name == b.name:
                fail(f"{name}.{a.name}: duplicate field")
        for f in fields:
            if f.enumv is not None:
                vals = ", ".join(c_str(v) for v in f.enumv)
                out.append(f"static const char *const e_{c_ident(name)}_{c_ident(f.name)}[] = "
                           f"{{{vals}, NULL}};")
        if not fields:
            continue
        out.append(f"static const struct schema_field f_{c_ident(name)}[] = {{")
        for f in fields:
            ref = f"{index[f.ref]} /* {f.ref} */" if f.ref else "-1"
            flags = " | ".join(f.flags) or "0"
            enumv = f"e_{c_ident(name)}_{c_ident(f.name)}" if f.enumv is not None else "NULL"
            out.append(f"\t{{{c_str(f.name)}, {f.ftype}, {f.elem or 0}, {flags}, {ref}, {enumv}}},")
        out.append("};")
        out.append("")
    out.append("const struct schema_type schema_types[] = {")
    for name in names:
        if types[name]:
            out.append(f"\t{{{c_str(name)}, f_{c_ident(name)}, ARRAY_SIZE(f_{c_ident(name)})}},")
        else:
            out.append(f"\t{{{c_str(name)}, NULL, 0}},")
    out.append("};")
    out.append("const size_t schema_ntypes = ARRAY_SIZE(schema_types);")
    nfields = sum(len(v) for v in types.values())
    out.append(f"/* {len(names)} types, {nfields} fields */")
    if len(names) > 0x7fff or max(len(v) for v in types.values()) > 0xffff:
        fail("too many types or fields for int16_t ref / uint16_t nfields")
    return "\n".join(out) + "\n"


def main():
    if kubernetes.__version__ != K8S_PYTHON_VERSION:
        fail(f"python3-kubernetes {kubernetes.__version__}; the overlay is written "
             f"against {K8S_PYTHON_VERSION}")
    sys.stdout.write(emit(build()))


if __name__ == "__main__":
    main()
