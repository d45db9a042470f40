#!/bin/sh
# Installs the Debian packages petrel needs to build and test, when run as
# root; otherwise prints the exact apt-get line and fails.
PKGS="gcc make pkg-config libevent-dev libssl-dev libc-ares-dev libcmocka-dev
libcrypt-dev clang clang-format libclang-rt-14-dev python3 python3-pytest swaks curl postfix
dnsmasq-base bsdutils openssl strace"
missing=""
for p in $PKGS; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "petrel needs these Debian packages; as root run:" >&2
    echo "  apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || exit 1
apt-get install -y -q $missing >/dev/null || exit 1
