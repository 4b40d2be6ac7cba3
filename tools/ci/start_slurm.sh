#!/usr/bin/env bash
# Bring up a one-machine Slurm cluster (munge, slurmctld, slurmd from Debian's
# packages) for the Slurm tests (tests/test_cluster/test_slurm.py):
#
#   sudo bash tools/ci/start_slurm.sh            # install if needed, configure, start
#   SLURM_INSTALL=0 sudo bash tools/ci/start_slurm.sh   # fail instead of installing
#
# One node (this host), CPUS (default 2) CPUs, one partition "debug"; no
# cgroups (proctrack/linuxproc, task/none), so it runs in containers too.
# Daemons run as root and log to /var/log/slurm. Running it again while the
# cluster answers does nothing; a cluster that does not answer is restarted.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "$0: must run as root (it installs packages and starts daemons)" >&2
    exit 2
fi
CPUS=${CPUS:-2}
NODE=$(hostname -s)
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
        ! command -v srun >/dev/null || ! command -v munged >/dev/null; then
    if [ "${SLURM_INSTALL:-1}" = 0 ]; then
        echo "$0: slurmctld, slurmd, srun or munged is missing and SLURM_INSTALL=0" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q munge slurmctld slurmd slurm-client
fi

if scontrol ping 2>/dev/null | grep -q 'is UP' &&
        sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then
    echo "$0: Slurm already up: $(sinfo -h -N -o '%N %T %c CPUs')"
    exit 0
fi

# munge: the key the package made, or a new one; munged refuses to run as root.
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 700 /etc/munge /var/lib/munge /var/log/munge
chmod 755 /run/munge
chmod 400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
fi
for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.2
done
munge -n | unmunge >/dev/null

mkdir -p "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
cat > "$CONF_DIR/slurm.conf" <<EOF
# Written by tools/ci/start_slurm.sh: one node, $CPUS CPUs, no cgroups.
ClusterName=nlnet-ci
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
# Only jobs submitted with --requeue are requeued (Slurm's default requeues every batch job).
JobRequeue=0
# A cancelled step's tasks get this long between SIGTERM and SIGKILL.
KillWait=30
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

# Restart from a clean state: a daemon from an earlier start may hold the ports.
for daemon in slurmd slurmctld; do
    pid=$(cat "/run/$daemon.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
    fi
done
/usr/sbin/slurmctld -c
/usr/sbin/slurmd

for _ in $(seq 150); do
    if sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then
        echo "$0: Slurm up: $(sinfo -V), $(munged --version | cut -d' ' -f1): $(sinfo -h -N -o '%N %T %c CPUs')"
        exit 0
    fi
    sleep 0.2
done
echo "$0: the node did not become idle within 30 s:" >&2
sinfo -N -l >&2 || true
tail -n 20 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true
exit 1
