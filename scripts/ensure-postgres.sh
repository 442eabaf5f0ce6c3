#!/usr/bin/env bash
# Makes sure the PostgreSQL server the tests use is accepting connections on 127.0.0.1:5432.
# Tests that need it fail loudly when it is absent; this script only tries to start it.
set -u
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then exit 0; fi
if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done
fi
echo "warning: PostgreSQL is not reachable on 127.0.0.1:5432; its tests will fail" >&2
exit 0
