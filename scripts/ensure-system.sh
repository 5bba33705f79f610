#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages pg-dr's tests and demo run against, when missing:
# a PostgreSQL server and clients, age, zstd, an SSH server, tar, git, iproute2, the AWS
# CLI and jq.
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
pg_server() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || have initdb; }

pg_server || missing+=(postgresql)
have pg_dump || missing+=(postgresql-client)
have age || missing+=(age)
have zstd || missing+=(zstd)
[ -x /usr/sbin/sshd ] || have sshd || missing+=(openssh-server)
have ssh || missing+=(openssh-client)
have tar || missing+=(tar)
have git || missing+=(git)
have ip || missing+=(iproute2)      # network namespaces: the tunnel test proves the path
have aws || missing+=(awscli)       # the runbook test follows the manual restore path
have jq || missing+=(jq)

[ ${#missing[@]} -eq 0 ] && exit 0

echo "pg-dr: installing missing system packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif have sudo && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "pg-dr: please install them first: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
if ! have apt-get; then
  echo "pg-dr: no apt-get here; install these with your package manager: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts a cluster on install; the tests run their own, so leave the packaged one stopped.
if have pg_lsclusters && [ "$(id -u)" -eq 0 ]; then
  pg_lsclusters -h 2>/dev/null | while read -r ver name _; do pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true; done
fi
