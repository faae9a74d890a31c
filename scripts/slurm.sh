#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the backfill tests:
#
#   scripts/slurm.sh start DIR   installs slurm-wlm and munge from Debian's packages
#                                when missing (needs root), writes DIR/slurm.conf,
#                                starts munged, slurmctld and slurmd with their
#                                state, spool, logs and pid files in DIR, waits
#                                for the node to be idle, and writes DIR/env
#                                (SLURM_CONF=…) for the caller to source.
#   scripts/slurm.sh stop DIR    stops the three daemons by the pids in DIR.
#
# Nothing is written to /etc/slurm: every Slurm command finds the cluster
# through SLURM_CONF. Daemons are stopped by pid, never by name.
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

pid_of() { [ -f "$1" ] && cat "$1" || true; }
alive() { [ -n "$1" ] && [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

stop() {
  for f in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munged.pid"; do
    pid="$(pid_of "$f")"
    if alive "$pid"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
      alive "$pid" && kill -9 "$pid" 2>/dev/null || true
    fi
  done
}

install_packages() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "slurm.sh: slurm-wlm and munge are missing and this is not root: cannot install them" >&2
    return 1
  fi
  echo "slurm.sh: installing slurm-wlm and munge (Debian packages)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

# A munged of this cluster's own (its socket in DIR), so clusters started
# side by side never share or stop each other's daemons.
start_munge() {
  mkdir -p "$dir/munge"
  if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then mungekey --create --force >/dev/null 2>&1 || true
    else dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; fi
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  fi
  local socket="$dir/munge/munge.sock"
  # -f: Debian's log folder ownership makes munged refuse to start otherwise.
  munged -f --pid-file="$dir/munged.pid" --log-file="$dir/munge/munged.log" \
    --seed-file="$dir/munge/seed" --socket="$socket"
  for _ in $(seq 1 50); do munge -S "$socket" -n 2>/dev/null | unmunge -S "$socket" >/dev/null 2>&1 && break; sleep 0.1; done
  munge -S "$socket" -n | unmunge -S "$socket" >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

write_conf() {
  local host cpus
  host="$(hostname -s)"
  cpus="$(nproc)"
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  cat >"$dir/slurm.conf" <<CONF
ClusterName=ecopstest
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
NodeName=$host CPUs=$cpus RealMemory=8000 State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
CONF
  echo "export SLURM_CONF=$dir/slurm.conf" >"$dir/env"
}

start() {
  mkdir -p "$dir"
  install_packages
  start_munge
  write_conf
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 1 100); do
    if sinfo -h -o '%t' 2>/dev/null | grep -q idle; then return 0; fi
    sleep 0.2
  done
  echo "slurm.sh: the node did not become idle; logs:" >&2
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  return 1
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
