#!/usr/bin/env bash
# A single-node Ceph RADOS Gateway on loopback, for the S3 tests and the benchmark: one mon, one
# OSD on memstore (fast; lost on stop), one RGW, no mgr, no auth between the daemons, everything
# under one private directory (../shared/notes/s3-ceph-rgw.md has why each setting is there).
#   tests/s3/rgw.sh start DIR [PORT]   starts it (PORT default 7480), creates a user, and writes
#                                      DIR/env (MV_S3_ENDPOINT, AWS_ACCESS_KEY_ID, ...)
#   tests/s3/rgw.sh stop DIR           stops the daemons by their pid files
# MV_RGW_MEMSTORE_BYTES sets the OSD's capacity (default 4 GiB; it is RAM, used as objects are
# written): the S3 benchmark (bench/s3.py) raises it to hold two repositories of its corpus.
# Needs: radosgw ceph-mon ceph-osd ceph-common (Debian 12), installed when missing.
set -euo pipefail
cmd=${1:?usage: rgw.sh start|stop DIR [PORT]}
dir=${2:?usage: rgw.sh start|stop DIR [PORT]}
port=${3:-7480}

stop() {
  for f in "$dir"/run/*.pid; do
    [[ -f $f ]] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}

if [[ $cmd == stop ]]; then
  stop
  exit 0
fi
[[ $cmd == start ]] || { echo "rgw.sh: unknown command '$cmd' (start or stop)" >&2; exit 2; }

missing=()
for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph; do
  command -v "$b" >/dev/null || missing+=("$b")
done
if ((${#missing[@]})); then
  echo "rgw.sh: installing radosgw ceph-mon ceph-osd ceph-common (missing: ${missing[*]})" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=600 radosgw ceph-mon ceph-osd ceph-common >/dev/null
fi

dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
stop
rm -rf "${dir:?}"/{mon,osd,rgw,run,log,ceph.conf,monmap,env}
mkdir -p "$dir"/{mon,osd,rgw,run,log}
fsid=$(cat /proc/sys/kernel/random/uuid)
mon_port=$((port + 10000))
conf=$dir/ceph.conf
cat >"$conf" <<CONF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$mon_port
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
osd_crush_chooseleaf_type = 0
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_data_avail_crit = 0
mon_data_avail_warn = 1
run_dir = $dir/run
admin_socket = $dir/run/\$name.asok
log_file = $dir/log/\$name.log
pid_file = $dir/run/\$name.pid
mon_data = $dir/mon/\$cluster-\$id
osd_data = $dir/osd/\$cluster-\$id
osd_objectstore = memstore
memstore_device_bytes = ${MV_RGW_MEMSTORE_BYTES:-4294967296}
[client]
ms_mon_client_mode = crc
[client.rgw.a]
rgw_data = $dir/rgw
rgw_frontends = beast endpoint=127.0.0.1:$port
CONF

log() { echo "rgw.sh: $*" >&2; }
fail() {
  log "$1; logs in $dir/log"
  tail -n 20 "$dir"/log/*.log >&2 2>/dev/null || true
  stop
  exit 1
}
started=$SECONDS
monmaptool --create --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >/dev/null 2>&1 || fail "ceph-mon --mkfs failed"
ceph-mon -c "$conf" -i a 2>>"$dir/log/start.log" || fail "ceph-mon did not start"
uuid=$(cat /proc/sys/kernel/random/uuid)
osd_id=$(timeout 60 ceph -c "$conf" osd new "$uuid") || fail "ceph osd new failed"
mkdir -p "$dir/osd/ceph-$osd_id"
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$uuid" >/dev/null 2>&1 || fail "ceph-osd --mkfs failed"
ceph-osd -c "$conf" -i "$osd_id" 2>>"$dir/log/start.log" || fail "ceph-osd did not start"
for _ in $(seq 120); do
  timeout 10 ceph -c "$conf" osd stat 2>/dev/null | grep -q "1 up" && break
  sleep 0.5
done
timeout 10 ceph -c "$conf" osd stat 2>/dev/null | grep -q "1 up" || fail "the OSD did not come up"
radosgw -c "$conf" -n client.rgw.a 2>>"$dir/log/start.log" || fail "radosgw did not start"
for _ in $(seq 240); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.5
done
curl -s -o /dev/null "http://127.0.0.1:$port/" || fail "RGW does not answer on 127.0.0.1:$port"
key=MVTEST$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
secret=$(head -c 30 /dev/urandom | base64 | tr -d '\n')
radosgw-admin -c "$conf" user create --uid=mailvault --display-name=mailvault \
  --access-key="$key" --secret="$secret" >/dev/null || fail "radosgw-admin user create failed"
# A second user with no buckets of its own: tests grant it get/put/list on a bucket by a bucket
# policy that denies deletes (the write-only agent credential of docs/S3.md §3).
wo_key=MVAGENT$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
wo_secret=$(head -c 30 /dev/urandom | base64 | tr -d '\n')
radosgw-admin -c "$conf" user create --uid=mailvault-agent --display-name=mailvault-agent \
  --access-key="$wo_key" --secret="$wo_secret" >/dev/null || fail "radosgw-admin user create (agent) failed"
cat >"$dir/env" <<ENV
MV_S3_ENDPOINT=http://127.0.0.1:$port
AWS_ACCESS_KEY_ID=$key
AWS_SECRET_ACCESS_KEY=$secret
AWS_DEFAULT_REGION=us-east-1
MV_S3_AGENT_USER=mailvault-agent
MV_S3_AGENT_ACCESS_KEY_ID=$wo_key
MV_S3_AGENT_SECRET_ACCESS_KEY=$wo_secret
ENV
log "RGW answers on 127.0.0.1:$port after $((SECONDS - started)) s (credentials in $dir/env)"
