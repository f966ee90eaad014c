#!/usr/bin/env bash
# A single-node Slurm on this machine, for tests and trials of `quac-host slurm`: munged, slurmctld and
# slurmd (2 CPUs, one node named after `hostname -s`, one partition "debug"), everything (config,
# state, spool, logs, the munge socket and key) in one folder. Needs Debian's slurm-wlm and munge
# (scripts/setup.sh --test installs them) and root (slurmd starts jobs as their users).
#
#   scripts/slurm-local.sh start [DIR]   starts it; prints `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm-local.sh stop [DIR]    stops the daemons it started (by their pid files)
#   scripts/slurm-local.sh status [DIR]  exit 0 when the node accepts jobs
#
# DIR defaults to ${TMPDIR:-/tmp}/quac-slurm. Ports: $QUAC_SLURM_PORT (slurmctld, default 6817) and
# the next one (slurmd). Exit status 3: Slurm cannot start here (missing programs, not root); the
# reason is on stderr.
set -euo pipefail

action=${1:-}
dir=${2:-${TMPDIR:-/tmp}/quac-slurm}
port=${QUAC_SLURM_PORT:-6817}
node=$(hostname -s)

cannot() { echo "slurm-local: cannot start Slurm here: $*" >&2; exit 3; }

stop_pid_file() {
    local f=$1
    [[ -f $f ]] || return 0
    local pid
    pid=$(cat "$f" 2>/dev/null || true)
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

ready() {
    SLURM_CONF=$dir/slurm.conf sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'
}

case $action in
start)
    for p in munged slurmctld slurmd sbatch sinfo scontrol; do
        command -v "$p" >/dev/null 2>&1 || [[ -x /usr/sbin/$p ]] || cannot "$p is not installed (apt-get install slurm-wlm munge)"
    done
    [[ $(id -u) == 0 ]] || cannot "slurmd must run as root to start jobs (running as $(id -un))"
    if [[ -f $dir/slurm.conf ]] && ready; then
        echo "export SLURM_CONF=$dir/slurm.conf"
        exit 0
    fi
    "$0" stop "$dir" >/dev/null 2>&1 || true
    # The daemons must not inherit our caller's descriptors (a parent that watches a pipe or socket
    # for our end would wait for the daemons too): close everything but stdin, stdout, stderr and the
    # script itself (bash keeps it on 255).
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        if [[ $fd -gt 2 && $fd -ne 255 ]]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    mkdir -p "$dir"/{state,spool,munge}
    chmod 700 "$dir/munge"
    # A key of its own, so the system's munge (if any) is left alone.
    [[ -f $dir/munge/munge.key ]] || dd if=/dev/urandom of="$dir/munge/munge.key" bs=128 count=1 status=none
    chmod 400 "$dir/munge/munge.key"
    /usr/sbin/munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" \
        </dev/null >>"$dir/munge/munged.log" 2>&1 || cannot "munged did not start (see $dir/munge/munged.log)"
    cat > "$dir/slurm.conf" <<EOF
ClusterName=quaclocal
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# The scheduler looks at pending jobs every second (default 60 s): a job after another starts
# soon after it.
SchedulerParameters=sched_interval=1,sched_min_interval=100000
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=30
MinJobAge=3600
NodeName=$node CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF=$dir/slurm.conf
    # The daemons get no stdin, stdout or stderr of ours: a caller reading our output to its end
    # must not wait for them.
    /usr/sbin/slurmctld -c -f "$SLURM_CONF" </dev/null >>"$dir/slurmctld.log" 2>&1 || cannot "slurmctld did not start (see $dir/slurmctld.log)"
    /usr/sbin/slurmd -f "$SLURM_CONF" </dev/null >>"$dir/slurmd.log" 2>&1 || cannot "slurmd did not start (see $dir/slurmd.log)"
    for _ in $(seq 100); do
        if ready; then echo "export SLURM_CONF=$dir/slurm.conf"; exit 0; fi
        sleep 0.2
    done
    scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
    for _ in $(seq 50); do
        if ready; then echo "export SLURM_CONF=$dir/slurm.conf"; exit 0; fi
        sleep 0.2
    done
    cannot "the node did not become idle in 30 s (see $dir/slurmctld.log and $dir/slurmd.log)"
    ;;
stop)
    stop_pid_file "$dir/slurmd.pid"
    stop_pid_file "$dir/slurmctld.pid"
    stop_pid_file "$dir/munge/munged.pid"
    ;;
status)
    ready
    ;;
*)
    echo "usage: $0 start|stop|status [DIR]" >&2
    exit 2
    ;;
esac
