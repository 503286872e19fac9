# Sourced by scripts/install_*.sh: install one Debian package with apt-get when a
# command it provides is missing. Not run on its own.
#
# apt_ensure SCRIPT PACKAGE BINARY CHECK
#   CHECK is the name of a shell function that succeeds when BINARY is available.
#   Does nothing when it already succeeds; otherwise installs PACKAGE (quietly, with
#   sudo when not root) and fails with a message naming SCRIPT if BINARY is still missing.
apt_ensure() {
    local script=$1 package=$2 binary=$3 check=$4
    if "$check"; then
        return 0
    fi

    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            echo "$script: $binary is missing and we are not root (no sudo either);" \
                 "install the Debian '$package' package" >&2
            return 1
        fi
    fi

    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null
    $sudo apt-get install -y -qq --no-install-recommends "$package" >/dev/null

    if ! "$check"; then
        echo "$script: installed '$package' but $binary is still not found" >&2
        return 1
    fi
}
