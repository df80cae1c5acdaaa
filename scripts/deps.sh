#!/bin/sh
# Installs the host packages bake, its tests and its fixtures need on Debian 12.
# Runs apt-get only when a package is missing, so a second run takes well under
# a second. Must run as root.
set -eu

# Each package is listed once. A package is installed when dpkg reports it as
# "install ok installed".
PACKAGES="
qemu-system-x86
qemu-utils
ovmf
xorriso
isolinux
syslinux-common
debootstrap
e2fsprogs
fdisk
grub-pc-bin
grub-common
openssh-client
tmux
busybox-static
dropbear-bin
cpio
kmod
zstd
debian-installer-12-netboot-amd64
ca-certificates
python3
"

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: must run as root (try: sudo $0)" >&2
	exit 1
fi

missing=""
for package in $PACKAGES; do
	status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
	if [ "$status" != "install ok installed" ]; then
		missing="$missing $package"
	fi
done

if [ -z "$missing" ]; then
	echo "deps.sh: all host packages present"
	exit 0
fi

echo "deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086 # the package list is split on purpose
apt-get install -y -q --no-install-recommends $missing
