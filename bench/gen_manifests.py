#!/usr/bin/python3
"""Generate a realistic repository of N Kubernetes objects: Deployments (40%),
Services (30%), ConfigMaps (20%), NetworkPolicies (10%), five per file, across
namespaces and apps. Usage: gen_manifests.py DIR N"""
import os
import random
import sys

out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)

def deployment(app, ns, i):
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  namespace: {ns}
  labels:
    app: {app}
    team: team-{i % 17}
    app.kubernetes.io/name: {app}
    app.kubernetes.io/part-of: shop
    app.kubernetes.io/managed-by: gitops
  annotations:
    gitops.io/owner: "team-{i % 17}@example.org"
    description: "{app} serves the {ns} storefront; pages the owner on errors"
spec:
  replicas: {1 + i % 5}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      app: {app}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: {app}
        tier: {rng.choice(['front', 'back', 'data'])}
    spec:
      containers:
      - name: {app}
        image: registry.example.org/{ns}/{app}:1.{i % 30}.{i % 7}
        args: ["--port=8080", "--log-level=info"]
        ports:
        - name: http
          containerPort: 8080
        env:
        - name: MODE
          value: production
        - name: LOG_FORMAT
          value: json
        - name: UPSTREAM
          value: http://{app}-backend.{ns}.svc.cluster.local:8080
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: CONFIG
          valueFrom:
            configMapKeyRef:
              name: {app}-config
              key: mode
        readinessProbe:
          httpGet:
            path: /healthz
            port: http
          periodSeconds: 5
        livenessProbe:
          tcpSocket:
            port: http
          initialDelaySeconds: 10
          periodSeconds: 20
        securityContext:
          runAsNonRoot: true
          runAsUser: 10001
          readOnlyRootFilesystem: true
          allowPrivilegeEscalation: false
        resources:
          requests:
            cpu: 100m
            memory: 64Mi
          limits:
            cpu: 500m
            memory: 256Mi
        volumeMounts:
        - name: config
          mountPath: /etc/{app}
      volumes:
      - name: config
        configMap:
          name: {app}-config
"""

def service(app, ns, i):
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {app}
  namespace: {ns}
  labels:
    app: {app}
    app.kubernetes.io/part-of: shop
  annotations:
    description: "front door of {app} in {ns}"
spec:
  selector:
    app: {app}
  ports:
  - name: http
    port: 80
    targetPort: http
  - name: metrics
    port: 9090
    targetPort: 9090
"""

def configmap(app, ns, i):
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: {app}-config
  namespace: {ns}
data:
  mode: production
  settings.ini: |
    [server]
    port = 8080
    workers = {1 + i % 8}
    timeout = 30s
    [log]
    level = info
    format = json
    [cache]
    size = 128MB
"""

def netpol(app, ns, i):
    return f"""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {app}-ingress
  namespace: {ns}
spec:
  podSelector:
    matchLabels:
      app: {app}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector:
        matchLabels:
          tier: front
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: ingress
    ports:
    - protocol: TCP
      port: 8080
"""

kinds = [deployment] * 4 + [service] * 3 + [configmap] * 2 + [netpol]
docs = []
for i in range(n):
    ns = f"ns-{i % 50}"
    app = f"app-{i // 10}"
    docs.append(kinds[i % 10](app, ns, i))
os.makedirs(out, exist_ok=True)
for f in range(0, n, 5):
    d = os.path.join(out, f"ns-{f % 50}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"objects-{f:05d}.yaml"), "w") as fh:
        fh.write("---\n".join(docs[f:f + 5]))
