#!/bin/sh
# Installs the vardkoll collector and bridge from this offline bundle: no network is used.
#
#   sudo ./install.sh [--update-key FILE.pub] [--prefix /opt/vardkoll-collector] [--python python3]
#   ./install.sh --stage-only --prefix DIR      only the version's venv (the update helper, CI)
#
# What it does (docs/collector.md, "Installing on a Raspberry Pi"):
#   - a venv for this version in PREFIX/versions/VERSION, from the wheels in wheels/ (pinned by SHA-256),
#     then PREFIX/current points at it (switched atomically) and /usr/local/bin/vardkoll at current/bin/vardkoll;
#   - the system user vardkoll-collector (groups: dialout for the serial ports), /etc/vardkoll-collector
#     (0750 root:vardkoll-collector, with the example configs) and /var/lib/vardkoll-collector (0700);
#   - the systemd units, the journald limits and the update signing key, if given;
#   - with systemd running: daemon-reload and the update path unit enabled. The collector itself is
#     started by the installer after enrollment (`systemctl enable --now vardkoll-collector`).
# Run it again to repair or to install another version; the old versions stay until removed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
prefix=/opt/vardkoll-collector
python=python3
stage_only=no
update_key=
user=vardkoll-collector

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --python) python=$2; shift 2 ;;
        --stage-only) stage_only=yes; shift ;;
        --update-key) update_key=$2; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "install.sh: okänt argument $1 (se --help)" >&2; exit 2 ;;
    esac
done

say() { echo "vardkoll-install: $*"; }
fail() { echo "vardkoll-install: FEL: $*" >&2; exit 1; }

field() { "$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$here/BUNDLE.json" "$1"; }
command -v "$python" >/dev/null 2>&1 || fail "$python saknas (apt install python3)"
version=$(field version)
arch=$(field arch)
bundle_python=$(field python)
machine_python=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$(uname -m)" = "$arch" ] || fail "paketet är byggt för $arch men maskinen är $(uname -m)"
[ "$machine_python" = "$bundle_python" ] || fail "paketet är byggt för Python $bundle_python men $python är $machine_python"
if [ "$stage_only" = no ] && [ "$(id -u)" != 0 ]; then fail "kör som root (sudo ./install.sh)"; fi

# The venv: no pip inside it (Debian's python3 has no ensurepip); pip runs from its own wheel.
target=$prefix/versions/$version
pip_wheel=$(ls "$here"/wheels/pip-*.whl | head -n 1)
if [ -f "$target/.complete" ]; then
    say "version $version finns redan i $target"
else
    rm -rf "$target"  # a half-made one from an interrupted run
    mkdir -p "$prefix/versions"
    "$python" -m venv --without-pip "$target"
    # Only this bundle's wheels: no index, no user or machine pip config.
    env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null \
        "$target/bin/python" "$pip_wheel/pip" install --quiet --no-index --no-cache-dir --disable-pip-version-check \
        --no-warn-script-location --find-links "$here/wheels" --require-hashes -r "$here/requirements.txt"
    "$target/bin/vardkoll" --help >/dev/null || fail "den installerade versionen startar inte ($target)"
    echo "$version" >"$target/.complete"
    say "version $version installerad i $target"
fi
if [ "$stage_only" = yes ]; then echo "$target"; exit 0; fi

ln -sfn "versions/$version" "$prefix/current.new"
mv -T "$prefix/current.new" "$prefix/current"
ln -sfn "$prefix/current/bin/vardkoll" /usr/local/bin/vardkoll
say "$prefix/current -> versions/$version"

# The service user, its folders and the serial ports' group.
getent group "$user" >/dev/null || groupadd --system "$user"
id "$user" >/dev/null 2>&1 || useradd --system --gid "$user" --home-dir /var/lib/$user --no-create-home --shell /usr/sbin/nologin "$user"
if getent group dialout >/dev/null; then usermod -a -G dialout "$user"; fi
install -d -m 0750 -o root -g "$user" /etc/vardkoll-collector
install -d -m 0700 -o "$user" -g "$user" /var/lib/vardkoll-collector
install -m 0640 -o root -g "$user" "$here/examples/collector.example.toml" /etc/vardkoll-collector/collector.example.toml
install -m 0640 -o root -g "$user" "$here/examples/bridge.example.toml" /etc/vardkoll-collector/bridge.example.toml
if [ -n "$update_key" ]; then
    install -d -m 0755 /etc/vardkoll-collector/update-keys
    install -m 0644 "$update_key" "/etc/vardkoll-collector/update-keys/$(basename "$update_key")"
    say "uppdateringsnyckel $(basename "$update_key") installerad"
fi

# Units, journald limits, the udev example (edit it before copying it to /etc/udev/rules.d/).
install -d /etc/systemd/system /etc/systemd/journald.conf.d "$prefix/share/doc"
install -m 0644 "$here"/doc/*.md "$prefix/share/doc/"
for unit in "$here"/units/*; do install -m 0644 "$unit" /etc/systemd/system/; done
install -m 0644 "$here/journald/vardkoll.conf" /etc/systemd/journald.conf.d/vardkoll.conf
install -m 0644 "$here/udev/99-vardkoll-serial.rules" "$prefix/share/99-vardkoll-serial.rules.example"
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now vardkoll-collector-update.path
    systemctl try-restart systemd-journald || true
    systemctl try-restart vardkoll-collector vardkoll-bridge || true
else
    say "systemd kör inte här: enheterna är kopierade men inte laddade"
fi

say "klart, version $version."
# The delimiter starts with a letter no line starts with: dash drops the byte after a partial
# delimiter match when it is not ASCII ("Nä" under a delimiter "NEXT").
cat <<'END_OF_STEPS'
Nästa steg:
  1. Registrera enheten: sudo -u vardkoll-collector vardkoll collector enroll --server https://… --code …
     (eller kopiera /etc/vardkoll-collector/collector.example.toml till collector.toml och redigera den)
  2. Kontrollera: sudo -u vardkoll-collector vardkoll collector doctor
  3. Starta: sudo systemctl enable --now vardkoll-collector   (med seriella enheter: vardkoll-bridge)
END_OF_STEPS
