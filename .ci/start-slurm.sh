#!/usr/bin/env bash
# Start hpcsweep's test cluster: one Slurm node on this host, with accounting
# (slurmdbd on MariaDB), every daemon run as root without systemd or cgroups and
# bound to 127.0.0.1.  Running it again is safe: it installs only the missing
# Debian packages, rewrites the configs and starts only the daemons that are down.
#
# Environment, with defaults:
#   HPCSWEEP_SLURM_BASE            /tmp/hpcsweep-slurm   configs, state, logs and pid files
#   HPCSWEEP_SLURM_MAX_ARRAY_SIZE  25    MaxArraySize, kept low so that a test sweep of
#                                        more trials must be split into several arrays
#   HPCSWEEP_SLURM_CPUS            8     CPUs the node advertises, which may exceed the
#                                        real cores because test tasks mostly sleep
#   HPCSWEEP_SLURM_LINK_ETC        1     link /etc/slurm/slurm.conf to our config if that
#                                        path is free, so Slurm commands work without SLURM_CONF
# Afterwards: source "$HPCSWEEP_SLURM_BASE/env.sh" (exports SLURM_CONF).
# Stop it with .ci/stop-slurm.sh.
set -euo pipefail

BASE=${HPCSWEEP_SLURM_BASE:-/tmp/hpcsweep-slurm}
MAX_ARRAY_SIZE=${HPCSWEEP_SLURM_MAX_ARRAY_SIZE:-25}
CPUS=${HPCSWEEP_SLURM_CPUS:-8}
LINK_ETC=${HPCSWEEP_SLURM_LINK_ETC:-1}
CTLD_PORT=6817 SLURMD_PORT=6818 DBD_PORT=6819

CONF_DIR=$BASE/etc
RUN_DIR=$BASE/run
LOG_DIR=$BASE/logs
STATE_DIR=$BASE/state
SLURM_CONF=$CONF_DIR/slurm.conf
MUNGE_SOCKET=$RUN_DIR/munge.socket
MARIADB_SOCKET=$RUN_DIR/mariadb.sock
export SLURM_CONF

started_ns=$(date +%s%N)
log() {
    local elapsed_ms=$((($(date +%s%N) - started_ns) / 1000000))
    printf '[start-slurm %d.%03d s] %s\n' $((elapsed_ms / 1000)) $((elapsed_ms % 1000)) "$*" >&2
}
fail() {
    log "error: $*"
    exit 1
}

# A daemon counts as running when its pid file names a live process (not a zombie)
# whose command name matches, so a pid reused by another program is not mistaken for it.
is_running() {
    local name=$1 command=$2 pid_file=$RUN_DIR/$1.pid pid
    [[ -s $pid_file ]] || return 1
    pid=$(<"$pid_file")
    [[ -r /proc/$pid/stat ]] || return 1
    [[ $(awk '{print $3}' "/proc/$pid/stat") != Z ]] || return 1
    [[ $(<"/proc/$pid/comm") == "$command"* ]]
}

is_listening() {
    ss -ltnH "sport = :$1" | grep -q .
}

wait_until() {
    local tries=$1 try
    shift
    for ((try = 0; try < tries; try++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

# ------------------------------------------------------------------- packages
install_packages() {
    local wanted=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server) missing=() package
    for package in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
    done
    ((${#missing[@]})) || return 0

    log "installing ${missing[*]}"
    # Without systemd, the packages' maintainer scripts would start the system's
    # munge, MariaDB and Slurm services through /etc/init.d. A policy-rc.d that
    # exits 101 forbids that while the packages install.
    local own_policy=0 status=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    {
        apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    } >"$LOG_DIR/apt.log" 2>&1 || status=$?
    ((own_policy)) && rm -f /usr/sbin/policy-rc.d
    if ((status != 0)); then
        cat "$LOG_DIR/apt.log" >&2
        fail "apt-get install ${missing[*]} failed (exit status $status)"
    fi
    log "installed Slurm $(dpkg-query -W -f='${Version}' slurmctld)"
}

# ------------------------------------------------------------------ preflight
check_loopback() {
    # With NoInAddrAny the daemons bind to the address that the host name resolves
    # to, so that address must be on loopback or they would listen on a real network.
    local address
    address=$(getent ahostsv4 "$(hostname)" | awk 'NR == 1 {print $1}')
    [[ $address == 127.* ]] ||
        fail "host name '$(hostname)' resolves to '${address:-nothing}', not a loopback address; add '127.0.0.1 $(hostname)' to /etc/hosts"
}

check_ports_free() {
    # A cluster started from another base directory would hold our ports.
    local port name
    for name in slurmctld:$CTLD_PORT slurmd:$SLURMD_PORT slurmdbd:$DBD_PORT; do
        port=${name#*:}
        name=${name%:*}
        if ! is_running "$name" "$name" && is_listening "$port"; then
            fail "port $port (for $name) is taken by a process not started from $BASE; stop the other cluster first"
        fi
    done
}

# -------------------------------------------------------------------- configs
write_slurm_conf() {
    local host=$1 memory_mb
    memory_mb=$(awk '/^MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
    cat >"$SLURM_CONF.tmp" <<EOF
# Written by hpcsweep's .ci/start-slurm.sh: a one-node test cluster on loopback.
ClusterName=hpcsweep
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
# Bind to the address of the host name (checked to be 127.0.0.1), never to 0.0.0.0.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny

AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start again
# (120 s by default, per slurm.conf(5) of Slurm 22.05).
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=5

StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

# No cgroups and no systemd in this container.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true

AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# slurmctld takes the munge socket for its slurmdbd connection from here, not from AuthInfo.
AccountingStoragePass=$MUNGE_SOCKET
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none

SchedulerType=sched/backfill
# Schedule at every event and run a full pass every second (default 60 s), so
# that new and requeued tasks start within seconds.
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Let the node advertise more CPUs than the host has.
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
MaxArraySize=$MAX_ARRAY_SIZE
MaxJobCount=100000
# Finished jobs stay visible to scontrol for 5 minutes.
MinJobAge=300
KillWait=5
InactiveLimit=0

NodeName=$host NodeAddr=127.0.0.1 Sockets=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    if cmp -s "$SLURM_CONF.tmp" "$SLURM_CONF"; then
        rm "$SLURM_CONF.tmp"
        return 1
    fi
    mv "$SLURM_CONF.tmp" "$SLURM_CONF"
    return 0
}

write_slurmdbd_conf() {
    local host=$1
    # slurmdbd reads slurmdbd.conf from the directory of SLURM_CONF.
    cat >"$CONF_DIR/slurmdbd.conf" <<EOF
# Written by hpcsweep's .ci/start-slurm.sh.
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=$host
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
CommunicationParameters=NoInAddrAny
SlurmUser=root
DebugLevel=info
LogFile=$LOG_DIR/slurmdbd.log
PidFile=$RUN_DIR/slurmdbd.pid
StorageType=accounting_storage/mysql
# localhost means the unix socket, which MYSQL_UNIX_PORT names when slurmdbd starts.
StorageHost=localhost
StorageUser=root
StorageLoc=hpcsweep_slurm_acct
EOF
    # slurmdbd rejects a config that anyone but SlurmUser can read.
    chmod 600 "$CONF_DIR/slurmdbd.conf"
}

link_etc_conf() {
    local link=/etc/slurm/slurm.conf
    if [[ ! -e $link && ! -L $link ]]; then
        mkdir -p /etc/slurm
        ln -s "$SLURM_CONF" "$link"
        touch "$RUN_DIR/etc-link"
    elif [[ $(readlink "$link" || true) != "$SLURM_CONF" ]]; then
        log "note: $link is not ours; export SLURM_CONF=$SLURM_CONF to reach this cluster"
    fi
}

# -------------------------------------------------------------------- daemons
start_munged() {
    is_running munged munged && return 0
    if [[ ! -s $CONF_DIR/munge.key ]]; then
        dd if=/dev/urandom of="$CONF_DIR/munge.key" bs=1024 count=1 status=none
    fi
    chmod 400 "$CONF_DIR/munge.key"
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    # --force: munged otherwise rejects a socket directory under a world-writable /tmp.
    munged --force --socket="$MUNGE_SOCKET" --key-file="$CONF_DIR/munge.key" \
        --pid-file="$RUN_DIR/munged.pid" --log-file="$LOG_DIR/munged.log" \
        --seed-file="$STATE_DIR/munge.seed"
    munge_round_trip() { munge --socket="$MUNGE_SOCKET" --no-input | unmunge --socket="$MUNGE_SOCKET"; }
    wait_until 50 munge_round_trip || fail "munged does not answer on $MUNGE_SOCKET; see $LOG_DIR/munged.log"
    log "munged running (pid $(<"$RUN_DIR/munged.pid"))"
}

start_mariadb() {
    is_running mariadbd mariadbd && return 0
    if [[ ! -d $STATE_DIR/mariadb/mysql ]]; then
        mariadb-install-db --no-defaults --user=root --datadir="$STATE_DIR/mariadb" \
            --auth-root-authentication-method=socket --skip-test-db >"$LOG_DIR/mariadb-install.log" 2>&1 ||
            fail "mariadb-install-db failed; see $LOG_DIR/mariadb-install.log"
    fi
    # --skip-networking opens no TCP port, so slurmdbd connects through the unix socket.
    setsid mariadbd --no-defaults --user=root --datadir="$STATE_DIR/mariadb" \
        --socket="$MARIADB_SOCKET" --pid-file="$RUN_DIR/mariadbd.pid" --skip-networking \
        --log-error="$LOG_DIR/mariadb.err" --innodb-buffer-pool-size=256M \
        --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
    wait_until 150 mariadb --no-defaults --socket="$MARIADB_SOCKET" --user=root --execute='SELECT 1' ||
        fail "mariadbd does not answer on $MARIADB_SOCKET; see $LOG_DIR/mariadb.err"
    wait_until 50 test -s "$RUN_DIR/mariadbd.pid" || fail "mariadbd wrote no pid file"
    log "mariadbd running (pid $(<"$RUN_DIR/mariadbd.pid"))"
}

start_slurmdbd() {
    is_running slurmdbd slurmdbd && return 0
    MYSQL_UNIX_PORT=$MARIADB_SOCKET slurmdbd
    wait_until 100 is_listening "$DBD_PORT" || fail "slurmdbd is not listening on port $DBD_PORT; see $LOG_DIR/slurmdbd.log"
    wait_until 50 sacctmgr --noheader --parsable2 show cluster ||
        fail "slurmdbd does not answer sacctmgr; see $LOG_DIR/slurmdbd.log"
    log "slurmdbd running (pid $(<"$RUN_DIR/slurmdbd.pid"))"
}

start_slurm() {
    local config_changed=$1
    if is_running slurmctld slurmctld; then
        if ((config_changed)); then
            log "slurm.conf changed: scontrol reconfigure"
            scontrol reconfigure || log "scontrol reconfigure failed; restart with .ci/stop-slurm.sh first"
        fi
    else
        slurmctld -f "$SLURM_CONF"
        log "slurmctld started"
    fi
    if ! is_running slurmd slurmd; then
        slurmd -f "$SLURM_CONF"
        log "slurmd started"
    fi
}

node_state() {
    sinfo --noheader --Node --format=%T 2>/dev/null | head -n 1
}

wait_for_node() {
    local state="" try
    for ((try = 0; try < 300; try++)); do
        state=$(node_state || true)
        case $state in idle | mixed | allocated) break ;; esac
        sleep 0.1
    done
    case $state in
        idle | mixed | allocated) ;;
        *)
            sinfo --Node --long >&2 || true
            fail "node not ready (state '${state:-unknown}'); see $LOG_DIR/slurmctld.log and slurmd.log"
            ;;
    esac
    log "node $(hostname -s) is $state; listening on $(ss -ltnH | awk '{print $4}' |
        grep -E ":($CTLD_PORT|$SLURMD_PORT|$DBD_PORT)\$" | sort | tr '\n' ' ')"
}

# ----------------------------------------------------------------------- main
mkdir -p "$CONF_DIR" "$RUN_DIR" "$LOG_DIR" "$STATE_DIR"/{slurmctld,slurmd}
chmod 755 "$BASE" "$RUN_DIR"

install_packages
check_loopback
check_ports_free

host=$(hostname -s)
config_changed=0
write_slurm_conf "$host" && config_changed=1
write_slurmdbd_conf "$host"
printf 'export SLURM_CONF=%q\n' "$SLURM_CONF" >"$BASE/env.sh"
[[ $LINK_ETC == 1 ]] && link_etc_conf

start_munged
start_mariadb
start_slurmdbd
start_slurm "$config_changed"
wait_for_node
log "ready (MaxArraySize=$MAX_ARRAY_SIZE); use it with: source $BASE/env.sh"
