#!/bin/sh
# Install every build, test and node dependency with apt-get. Idempotent: quiet and
# fast when everything is present (one dpkg-query, no apt-get at all).
set -e
PKGS="build-essential pkg-config clang libclang-rt-14-dev git
libgit2-dev libyaml-dev libjansson-dev libssl-dev libcurl4-openssl-dev libnftables-dev
libcmocka-dev bats python3 python3-yaml python3-kubernetes
nftables iproute2 runc containernetworking-plugins skopeo umoci dnsmasq-base
docker-registry busybox-static openssh-server openssh-client
sqlite3 libsqlite3-dev ansible-core curl procps psmisc bc jq"
missing=""
for p in $PKGS; do
	s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$s" = installed ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
if [ "$(id -u)" != 0 ]; then
	echo "deps: need root to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
# docker-registry and ssh start services on install on some images; the testbed starts its own.
systemctl disable --now docker-registry >/dev/null 2>&1 || true
