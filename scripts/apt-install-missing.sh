#!/bin/bash
# Install the apt packages of the arguments that are missing, and never upgrade an installed one.
#
#     scripts/apt-install-missing.sh PACKAGE...
#
# Says in one line what it installs. apt's simulation (apt-get -s) runs first: when installing
# the missing packages would upgrade any installed package (a newer postgresql-15 pulled in by a
# dependency would break the clusters already running on the old one), the installed versions
# are pinned; when apt cannot do without the upgrade, nothing is installed and the exit is 1.
# APT_DRY_RUN=1 stops after the simulation.
set -euo pipefail

missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "missing apt packages: ${missing[*]} (run as root: apt-get install --no-upgrade ${missing[*]})" >&2
    exit 1
fi

# "Inst NAME [INSTALLED VERSION] (NEW VERSION ...)" is how apt-get -s shows an upgrade.
upgrades() { awk '$1 == "Inst" && $3 ~ /^\[/ { print $2 }'; }

apt-get update -qq
plan=$(apt-get -s install --no-upgrade "${missing[@]}")
pins=()
for package in $(upgrades <<<"$plan"); do
    pins+=("$package=$(dpkg-query -W -f='${Version}' "$package")")
done
if [ ${#pins[@]} -gt 0 ]; then
    if ! plan=$(apt-get -s install --no-upgrade "${missing[@]}" "${pins[@]}" 2>&1) || [ -n "$(upgrades <<<"$plan")" ]; then
        echo "installing ${missing[*]} would upgrade installed packages (${pins[*]} pinned); nothing installed." \
            "Upgrade them yourself (and restart their clusters), then run make again" >&2
        exit 1
    fi
fi
echo "installing apt packages: ${missing[*]}${pins[*]:+ (keeping ${pins[*]})}"
[ "${APT_DRY_RUN:-0}" = 1 ] && exit 0
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade "${missing[@]}" "${pins[@]}" >/dev/null
