#!/usr/bin/env bash
# Stop the test cluster of .ci/start-slurm.sh, signalling only the processes named
# in its pid files.  With --purge, also delete its job state, accounting database
# and logs, so that the next start begins empty.
set -uo pipefail

BASE=${HPCSWEEP_SLURM_BASE:-/tmp/hpcsweep-slurm}
RUN_DIR=$BASE/run

is_alive() {
    local pid=$1
    [[ -r /proc/$pid/stat ]] && [[ $(awk '{print $3}' "/proc/$pid/stat") != Z ]]
}

stop_daemon() {
    local name=$1 pid_file=$RUN_DIR/$1.pid pid try
    [[ -s $pid_file ]] || return 0
    pid=$(<"$pid_file")
    # Only a live process with the daemon's command name: the pid may have been reused.
    if ! is_alive "$pid" || [[ $(<"/proc/$pid/comm") != "$name"* ]]; then
        echo "$name: pid $pid from $pid_file is not running; removing the stale pid file"
        rm -f "$pid_file"
        return 0
    fi
    kill -TERM "$pid"
    for ((try = 0; try < 150; try++)); do
        is_alive "$pid" || break
        sleep 0.1
    done
    if is_alive "$pid"; then
        echo "$name (pid $pid) still running 15 s after SIGTERM; sending SIGKILL"
        kill -KILL "$pid"
        sleep 0.5
    fi
    rm -f "$pid_file"
    echo "stopped $name (pid $pid)"
}

# Reverse order of start: compute node, controller, accounting, database, munge.
for daemon in slurmd slurmctld slurmdbd mariadbd munged; do
    stop_daemon "$daemon"
done
rm -f "$RUN_DIR/munge.socket" "$RUN_DIR/munge.socket.lock" "$RUN_DIR/mariadb.sock"

if [[ -e $RUN_DIR/etc-link && $(readlink /etc/slurm/slurm.conf 2>/dev/null) == "$BASE/etc/slurm.conf" ]]; then
    rm -f /etc/slurm/slurm.conf "$RUN_DIR/etc-link"
fi

if [[ ${1:-} == --purge ]]; then
    rm -rf "$BASE/state" "$BASE/logs"
    echo "deleted $BASE/state and $BASE/logs"
fi
