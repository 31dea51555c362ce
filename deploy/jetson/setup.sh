#!/usr/bin/env bash
# Prepare a Jetson (AGX Xavier, JetPack 5) to run the profiler agent as a service:
#   1. power mode: `nvpmodel -m MODE` (0 = MAXN on the AGX Xavier, by default),
#   2. clocks pinned to their maximum with `jetson_clocks` (the unit repeats it at every start),
#   3. a system user for the agent, /etc/nas-lut/agent.env, and profiler-agent.service,
#   4. prints the fingerprint the agent will report to the LUT server.
# --dry-run changes nothing and runs nothing privileged: it prints what it would do and reads
# the device from --root (e.g. tests/fixtures/xavier, a copy of a board's /etc, /proc and /sys).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG="setup.sh"

MODE=0
CLOCKS=1
ROOT=/
DRY_RUN=0
START=1
VENV=/opt/nas-lut/venv
AGENT=""
ENV_FILE=/etc/nas-lut/agent.env
UNIT_DIR=/etc/systemd/system
UNIT_NAME=profiler-agent.service
AGENT_USER=lut-agent
SERVER=""
TOKEN=""
NAME=""
DEVICE=""
BACKEND=tensorrt
PRECISION=fp16

usage() {
    cat <<EOF
usage: $PROG [options]

Set the Jetson's power mode and clocks, install the profiler agent's systemd unit and print
the device fingerprint the agent will report.

options:
  --mode N          nvpmodel power mode to set (default 0: MAXN on the AGX Xavier)
  --no-clocks       do not run jetson_clocks (now or at each agent start)
  --server URL      LUT server URL for a new env file (LUT_SERVER)
  --token TOKEN     agent token for a new env file (LUT_TOKEN; from \`lut token create --device NAME --device-class CLASS\`)
  --name NAME       this board's name, the one the token is bound to (LUT_NAME, default: host name)
  --device CLASS    device class of the target (LUT_DEVICE, default: from the module, e.g. xavier)
  --backend NAME    tensorrt | pytorch-cuda | ... (default tensorrt)
  --precision P     fp16 | fp32 | int8 (default fp16)
  --env-file PATH   agent settings (default $ENV_FILE; kept if it exists and no --server/--token)
  --venv DIR        venv made by install-venv.sh (default $VENV)
  --agent PATH      profiler-agent executable (default: DIR/bin/profiler-agent, else on PATH)
  --no-start        install and enable the unit but do not start it
  --root DIR        filesystem root the device is read from (default /; a fixture tree with --dry-run)
  --dry-run         print the commands instead of running them; change nothing
  -h, --help        this help
EOF
}

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

need_arg() {
    [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --mode) need_arg "$@"; MODE="$2"; shift 2 ;;
        --no-clocks) CLOCKS=0; shift ;;
        --server) need_arg "$@"; SERVER="$2"; shift 2 ;;
        --token) need_arg "$@"; TOKEN="$2"; shift 2 ;;
        --name) need_arg "$@"; NAME="$2"; shift 2 ;;
        --device) need_arg "$@"; DEVICE="$2"; shift 2 ;;
        --backend) need_arg "$@"; BACKEND="$2"; shift 2 ;;
        --precision) need_arg "$@"; PRECISION="$2"; shift 2 ;;
        --env-file) need_arg "$@"; ENV_FILE="$2"; shift 2 ;;
        --venv) need_arg "$@"; VENV="$2"; shift 2 ;;
        --agent) need_arg "$@"; AGENT="$2"; shift 2 ;;
        --no-start) START=0; shift ;;
        --root) need_arg "$@"; ROOT="$2"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[[ "$MODE" =~ ^[0-9]+$ ]] || die "--mode must be a number (an nvpmodel mode id), not '$MODE'"
[[ -d "$ROOT" ]] || die "--root $ROOT is not a directory"
ROOT="$(cd "$ROOT" && pwd)"
if [[ "$ROOT" != / && $DRY_RUN -eq 0 ]]; then
    die "--root $ROOT only makes sense with --dry-run (the real settings apply to this machine)"
fi
if [[ $DRY_RUN -eq 0 && $EUID -ne 0 ]]; then
    die "run as root (sudo $0 ...), or add --dry-run to see what it would do"
fi

# path REL: a file of the device, under --root.
path() {
    if [[ "$ROOT" == / ]]; then echo "/$1"; else echo "$ROOT/$1"; fi
}

# run CMD...: run it, or with --dry-run print it (shell-quoted) instead.
run() {
    if [[ $DRY_RUN -eq 1 ]]; then
        printf 'would run:'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

step() {
    printf '\n== %s\n' "$*"
}

# --- the device ------------------------------------------------------------------------------------
step "device"
release_file="$(path etc/nv_tegra_release)"
[[ -r "$release_file" ]] || die "$release_file not found: this is not an L4T (Jetson) system"
model_file="$(path proc/device-tree/model)"
model="unknown"
[[ -r "$model_file" ]] && model="$(tr -d '\0' <"$model_file")"
# The device class: the module family in the model string, else the SoC in the device tree's
# compatible list (the AGX Xavier devkit calls itself just "Jetson-AGX").
device_class=""
for known in orin xavier nano tx2; do
    if [[ "${model,,}" == *"$known"* ]]; then
        device_class="$known"
        break
    fi
done
compatible_file="$(path proc/device-tree/compatible)"
if [[ -z "$device_class" && -r "$compatible_file" ]]; then
    case "$(tr '\0' ' ' <"$compatible_file")" in
        *tegra234*) device_class=orin ;;
        *tegra194*) device_class=xavier ;;
        *tegra186*) device_class=tx2 ;;
        *tegra210*) device_class=nano ;;
    esac
fi
echo "model:   $model${device_class:+ (device class: $device_class)}"
l4t="$(sed -n 's/^# R\([0-9]*\) (release), REVISION: \([0-9.]*\),.*/\1.\2/p' "$release_file" | head -n 1)"
echo "L4T:     ${l4t:-$(head -n 1 "$release_file")}"

# mode_name ID: the NAME of power mode ID in nvpmodel.conf ("" when unknown).
conf="$(path etc/nvpmodel.conf)"
mode_name() {
    [[ -r "$conf" ]] || return 0
    sed -n "s/^< *POWER_MODEL *ID=$1 *NAME=\([^ >]*\).*/\1/p" "$conf" | head -n 1
}
current_mode=""
status_file="$(path var/lib/nvpmodel/status)"
if [[ -r "$status_file" ]]; then
    current_mode="$(sed -n 's/.*pmode:0*\([0-9][0-9]*\).*/\1/p' "$status_file" | head -n 1)"
fi

# --- power mode ------------------------------------------------------------------------------------
target_name="$(mode_name "$MODE")"
if [[ -r "$conf" && -z "$target_name" ]]; then
    die "power mode $MODE is not defined in $conf (see \`nvpmodel -p --verbose\`)"
fi
step "power mode: $MODE${target_name:+ ($target_name)}"
if [[ -n "$current_mode" ]]; then
    echo "current: $current_mode${current_mode:+ ($(mode_name "$current_mode"))}"
fi
if [[ "$current_mode" == "$MODE" ]]; then
    echo "already set"
else
    # nvpmodel may ask to reboot when the mode changes the online CPUs; answer it, then run setup.sh again.
    run nvpmodel -m "$MODE"
fi

# --- clocks ----------------------------------------------------------------------------------------
if [[ $CLOCKS -eq 1 ]]; then
    step "clocks: jetson_clocks (maximum, fixed; repeated by the unit at each start)"
    run jetson_clocks
else
    step "clocks: left to DVFS (--no-clocks)"
fi

# --- agent user, settings, unit --------------------------------------------------------------------
step "service: $UNIT_NAME"
agent_bin="$VENV/bin/profiler-agent"
if [[ $DRY_RUN -eq 0 && ! -x "$agent_bin" ]]; then
    die "$agent_bin not found: install the agent first (deploy/jetson/install-venv.sh), or pass --venv DIR"
fi

if ! id "$AGENT_USER" >/dev/null 2>&1; then
    run useradd --system --gid video --home-dir /var/cache/nas-lut --no-create-home --shell /usr/sbin/nologin "$AGENT_USER"
fi

# The env file: written when missing, or rewritten when --server/--token are given.
if [[ -n "$SERVER" || -n "$TOKEN" || ! -e "$ENV_FILE" ]]; then
    missing=""
    [[ -n "$SERVER" ]] || missing="--server URL"
    [[ -n "$TOKEN" ]] || missing="${missing:+$missing and }--token TOKEN (from \`lut token create --device NAME --device-class CLASS\` on the server)"
    [[ -n "$NAME" ]] || NAME="$(hostname -s 2>/dev/null || hostname)"
    [[ -n "$DEVICE" ]] || DEVICE="$device_class"
    [[ -n "$DEVICE" ]] || die "the module '$model' is not one the agent knows: pass --device CLASS"
    if [[ -n "$missing" ]]; then
        [[ $DRY_RUN -eq 1 ]] || die "$ENV_FILE needs $missing"
        echo "would need $missing to write $ENV_FILE"
    else
        env_text="LUT_SERVER=$SERVER
LUT_TOKEN=$TOKEN
LUT_NAME=$NAME
LUT_DEVICE=$DEVICE
LUT_BACKEND=$BACKEND
LUT_PRECISION=$PRECISION
LUT_AGENT_ARGS="
        if [[ $DRY_RUN -eq 1 ]]; then
            echo "would write $ENV_FILE (mode 600):"
            while IFS= read -r line; do
                printf '    %s\n' "$line"
            done <<<"${env_text//"$TOKEN"/${TOKEN:0:8}...}"
        else
            install -d -m 0755 "$(dirname "$ENV_FILE")"
            (umask 077 && printf '%s\n' "$env_text" >"$ENV_FILE")
        fi
    fi
else
    echo "keeping $ENV_FILE"
fi

# The unit, pointed at this venv and env file; without the jetson_clocks line under --no-clocks.
unit_text="$(sed -e "s#/opt/nas-lut/venv/bin/profiler-agent#$agent_bin#" \
    -e "s#^EnvironmentFile=.*#EnvironmentFile=$ENV_FILE#" \
    -e "s#^User=.*#User=$AGENT_USER#" "$HERE/profiler-agent.service")"
if [[ $CLOCKS -eq 0 ]]; then
    unit_text="$(grep -v '^ExecStartPre=+/usr/bin/jetson_clocks' <<<"$unit_text")"
fi
if [[ $DRY_RUN -eq 1 ]]; then
    echo "would write $UNIT_DIR/$UNIT_NAME ($(wc -l <<<"$unit_text") lines, ExecStart=$agent_bin)"
else
    printf '%s\n' "$unit_text" >"$UNIT_DIR/$UNIT_NAME"
    chmod 0644 "$UNIT_DIR/$UNIT_NAME"
fi
run systemctl daemon-reload
if [[ $START -eq 1 ]]; then
    run systemctl enable --now "$UNIT_NAME"
else
    run systemctl enable "$UNIT_NAME"
fi

# --- the fingerprint -------------------------------------------------------------------------------
if [[ -z "$AGENT" ]]; then
    if [[ -x "$agent_bin" ]]; then
        AGENT="$agent_bin"
    elif command -v profiler-agent >/dev/null 2>&1; then
        AGENT="$(command -v profiler-agent)"
    else
        die "profiler-agent not found in $VENV or on PATH: install it (install-venv.sh) or pass --agent PATH"
    fi
fi
step "fingerprint the agent will report ($AGENT probe --root $ROOT)"
[[ $DRY_RUN -eq 1 ]] && echo "(as the device is now: a dry run changed no power mode or clock)"
fingerprint="$("$AGENT" probe --root "$ROOT" --json)" || die "$AGENT probe --root $ROOT failed"
# The venv's Python can also compute the digest the agent reports; the system one may not.
py=python3
[[ -x "$VENV/bin/python" ]] && py="$VENV/bin/python"
PYTHONIOENCODING=utf-8 "$py" "$HERE/fingerprint_summary.py" <<<"$fingerprint"
