#!/bin/bash
# Builds the test fixtures bake's integration tests boot under QEMU, from Debian
# packages and Debian's mirror only. Fixtures are cached in
# ${BAKE_FIXTURES:-$HOME/.cache/bake/fixtures} and rebuilt only when missing.
# Each build works in a temporary directory beside the cache and renames its
# outputs into place at the end, so an interrupted build leaves no partial
# fixture behind. Must run as root.
#
# Usage:
#   fixtures.sh debian-disk | netboot-iso | tiny-iso | all
#   fixtures.sh path NAME     print the cached path of a fixture
set -euo pipefail

FIXTURES=${BAKE_FIXTURES:-$HOME/.cache/bake/fixtures}
MIRROR=${BAKE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)

# Label of the Debian disk's root file system. GRUB finds its configuration by
# this label, and the kernel command line and fstab name the root by it, so
# neither depends on the disk's device name (vda, sda) or BIOS drive number.
ROOT_LABEL=debian-root
# Virtual size of the Debian disk in MiB. The root partition starts at 1 MiB.
DISK_MIB=2048
PART_START_SECTOR=2048

GRUB_DIR=/usr/lib/grub/i386-pc
NETBOOT_DIR=/usr/lib/debian-installer/images/12/amd64/text
ISOLINUX_BIN=/usr/lib/ISOLINUX/isolinux.bin
SYSLINUX_MODULES=/usr/lib/syslinux/modules/bios

log() {
	echo "fixtures: $*" >&2
}

die() {
	echo "fixtures: $*" >&2
	exit 1
}

# fixture_path prints the path of a fixture's main file.
fixture_path() {
	case "$1" in
	debian-disk) echo "$FIXTURES/debian-12-base.qcow2" ;;
	debian-kernel) echo "$FIXTURES/debian-12-base.vmlinuz" ;;
	debian-initrd) echo "$FIXTURES/debian-12-base.initrd" ;;
	netboot-iso) echo "$FIXTURES/debian-12-netboot.iso" ;;
	tiny-iso) echo "$FIXTURES/tiny-installer.iso" ;;
	*) die "unknown fixture \"$1\": expected debian-disk, debian-kernel, debian-initrd, netboot-iso or tiny-iso" ;;
	esac
}

require_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (try: sudo $0 $*)"
}

# ensure_deps runs deps.sh, which calls apt-get only when a package is missing.
ensure_deps() {
	"$SCRIPT_DIR/deps.sh" >&2
}

# lock_fixture holds an exclusive lock on one fixture until its shell exits,
# so two concurrent builds of it wait for each other instead of both building.
lock_fixture() {
	mkdir -p "$FIXTURES"
	exec 9>"$FIXTURES/.lock-$1"
	flock 9
}

# new_workdir creates a build directory on the cache's filesystem so the final
# rename is atomic, and removes it when the script exits.
new_workdir() {
	mkdir -p "$FIXTURES"
	WORK=$(mktemp -d "$FIXTURES/.build-$1.XXXXXX")
	trap 'rm -rf "$WORK"' EXIT
}

build_debian_disk() {
	local disk kernel initrd
	disk=$(fixture_path debian-disk)
	kernel=$(fixture_path debian-kernel)
	initrd=$(fixture_path debian-initrd)
	lock_fixture debian-disk
	if [ -f "$disk" ] && [ -f "$kernel" ] && [ -f "$initrd" ]; then
		log "debian-disk: cached at $disk"
		return
	fi

	local started=$SECONDS
	new_workdir debian-disk
	local root=$WORK/root
	mkdir -p "$root" "$FIXTURES/cache/debootstrap"

	log "debian-disk: debootstrap $SUITE from $MIRROR"
	debootstrap --variant=minbase --cache-dir="$FIXTURES/cache/debootstrap" \
		--include=systemd-sysv,openssh-server,cloud-init,python3-cffi-backend,linux-image-cloud-amd64,ifupdown,isc-dhcp-client,udev,cloud-guest-utils,e2fsprogs,util-linux,fdisk,sudo,ca-certificates \
		"$SUITE" "$root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
		tail -n 30 "$WORK/debootstrap.log" >&2
		die "debootstrap of $SUITE from $MIRROR failed (last lines above): check the mirror, or set BAKE_DEBIAN_MIRROR"
	}

	configure_debian_root "$root"
	install_grub_files "$root"

	log "debian-disk: making the disk image"
	make_debian_raw "$root" "$WORK/disk.raw"

	cp "$(readlink -f "$root/vmlinuz")" "$WORK/vmlinuz"
	cp "$(readlink -f "$root/initrd.img")" "$WORK/initrd"
	qemu-img convert -c -O qcow2 -o compression_type=zstd "$WORK/disk.raw" "$WORK/disk.qcow2"

	mv "$WORK/vmlinuz" "$kernel"
	mv "$WORK/initrd" "$initrd"
	mv "$WORK/disk.qcow2" "$disk"
	log "debian-disk: built $disk in $((SECONDS - started)) s"
}

configure_debian_root() {
	local root=$1

	cat >"$root/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://security.debian.org/debian-security $SUITE-security main
SOURCES

	echo debian >"$root/etc/hostname"
	cat >"$root/etc/hosts" <<'HOSTS'
127.0.0.1	localhost
127.0.1.1	debian
::1		localhost ip6-localhost ip6-loopback
HOSTS
	# The guest's DHCP client writes its own resolver configuration at boot.
	rm -f "$root/etc/resolv.conf"

	echo "LABEL=$ROOT_LABEL / ext4 errors=remount-ro 0 1" >"$root/etc/fstab"

	# Names virtio-net gets: ens3 on the pc machine (slot 3 with ACPI hotplug),
	# enp0s2 on q35, enp0s3/ens2 in other slot layouts, eth0 with net.ifnames=0.
	cat >"$root/etc/network/interfaces" <<'IFACES'
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback
IFACES
	local nic
	for nic in ens3 enp0s3 ens2 enp0s2 eth0; do
		printf '\nallow-hotplug %s\niface %s inet dhcp\n' "$nic" "$nic" >>"$root/etc/network/interfaces"
	done

	# cloud-init reads a NoCloud seed (a "cidata" CD or a seed URL) and
	# otherwise falls back to None instead of waiting on cloud metadata
	# services. The ifupdown stanzas above configure the network, so
	# cloud-init's own network configuration, which would add duplicate
	# stanzas for the same interface, is off.
	# C.UTF-8 needs no locales package, and cloud-init skips locale-gen for
	# it. manage_etc_hosts maps the hostname cloud-init sets to 127.0.1.1, so
	# sudo can resolve it.
	cat >"$root/etc/cloud/cloud.cfg.d/90-bake.cfg" <<'CLOUD'
datasource_list: [ NoCloud, None ]
network:
  config: disabled
locale: C.UTF-8
manage_etc_hosts: true
CLOUD

	# Root logs in with keys only. Host keys are made on first boot, so every
	# instance of the disk gets its own. ssh-keygen -A runs before sshd -t
	# because sshd -t fails without host keys.
	cat >"$root/etc/ssh/sshd_config.d/bake.conf" <<'SSHD'
PermitRootLogin prohibit-password
PasswordAuthentication no
SSHD
	rm -f "$root"/etc/ssh/ssh_host_*
	mkdir -p "$root/etc/systemd/system/ssh.service.d"
	cat >"$root/etc/systemd/system/ssh.service.d/host-keys.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT

	# Root's password is locked ("!"), so no password login works.
	chroot "$root" usermod -p '!' root

	# An empty machine-id makes systemd generate a new one on first boot.
	: >"$root/etc/machine-id"
	rm -f "$root/var/lib/dbus/machine-id"

	chroot "$root" apt-get clean
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/tmp/* "$root"/var/tmp/*
}

# install_grub_files writes /boot/grub into the root: GRUB's modules, so
# insmod works, and a grub.cfg that boots the kernel the /vmlinuz and
# /initrd.img symlinks point at. Debian's kernel packages update those
# symlinks, so the menu keeps working after a kernel upgrade in the guest.
install_grub_files() {
	local root=$1
	mkdir -p "$root/boot/grub/i386-pc"
	cp "$GRUB_DIR"/*.mod "$GRUB_DIR"/*.lst "$root/boot/grub/i386-pc/"
	cat >"$root/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0
menuentry 'Debian GNU/Linux 12' {
	search --no-floppy --label --set=root $ROOT_LABEL
	linux /vmlinuz root=LABEL=$ROOT_LABEL ro console=tty0 console=ttyS0,115200
	initrd /initrd.img
}
CFG
}

# make_debian_raw writes a raw MBR disk without loop devices. sfdisk writes
# the partition table into a file, and mkfs.ext4 -d makes the root file
# system as a separate image that dd copies to the partition's offset. GRUB
# then goes into the MBR and the gap before the partition.
make_debian_raw() {
	local root=$1 raw=$2
	local part_mib=$((DISK_MIB - PART_START_SECTOR / 2048))

	truncate -s "${DISK_MIB}M" "$raw"
	echo "start=$PART_START_SECTOR, type=83, bootable" | sfdisk --quiet --label dos "$raw"

	truncate -s "${part_mib}M" "$WORK/root.ext4"
	mkfs.ext4 -q -F -L "$ROOT_LABEL" -d "$root" "$WORK/root.ext4"
	dd if="$WORK/root.ext4" of="$raw" bs=1M seek=$((PART_START_SECTOR / 2048)) conv=notrunc,sparse status=none
	rm -f "$WORK/root.ext4"

	write_grub_boot "$raw"
}

# write_grub_boot installs GRUB for BIOS the way grub-install embeds it, but
# on a file. boot.img goes into the first 440 bytes of the MBR, before the
# disk signature and partition table, and core.img goes at sector 1.
# make_grub_core explains why there.
write_grub_boot() {
	local raw=$1
	make_grub_core "$ROOT_LABEL" "$WORK/core.img"
	dd if="$GRUB_DIR/boot.img" of="$raw" bs=440 count=1 conv=notrunc status=none
	dd if="$WORK/core.img" of="$raw" bs=512 seek=1 conv=notrunc status=none
}

# make_grub_core writes a GRUB core.img for an MBR disk whose first partition
# starts at sector 2048. boot.img loads the sector whose LBA it stores at
# offset 0x5c, which is 1 in the stock image, and core.img's first sector
# (diskboot.img) loads the rest from sector 2 on, the blocklist grub-mkimage
# writes by default. The embedded config finds the root file system by
# label, so the disk boots whichever BIOS drive number it gets.
make_grub_core() {
	local label=$1 core=$2
	local early=$WORK/grub-early.cfg

	cat >"$early" <<CFG
search --no-floppy --label --set=root $label
set prefix=(\$root)/boot/grub
CFG
	grub-mkimage -O i386-pc -o "$core" -c "$early" -p '(hd0,msdos1)/boot/grub' \
		biosdisk part_msdos ext2 search search_label normal configfile linux echo test serial terminal

	local core_sectors=$((($(stat -c %s "$core") + 511) / 512))
	if [ $((core_sectors + 1)) -gt "$PART_START_SECTOR" ]; then
		die "grub core.img needs $core_sectors sectors but the gap before the partition has $((PART_START_SECTOR - 1)): drop modules from make_grub_core"
	fi
	local kernel_sector
	kernel_sector=$(od -An -t u8 -j $((0x5c)) -N 8 "$GRUB_DIR/boot.img" | tr -d ' ')
	[ "$kernel_sector" = 1 ] || die "$GRUB_DIR/boot.img loads core.img from sector $kernel_sector, expected 1: the grub-pc-bin package changed its layout"
}

# build_netboot_iso makes a BIOS-bootable ISO from the netboot tree of the
# debian-installer-12-netboot-amd64 package: its kernel, initrd and isolinux
# menus, with isolinux.bin from the isolinux package. isolinux.bin loads
# ldlinux.c32 and the menu modules only from its own syslinux build, so the
# package's copies of those modules are replaced with syslinux-common's.
build_netboot_iso() {
	local iso
	iso=$(fixture_path netboot-iso)
	lock_fixture netboot-iso
	if [ -f "$iso" ]; then
		log "netboot-iso: cached at $iso"
		return
	fi

	local started=$SECONDS
	new_workdir netboot-iso
	local tree=$WORK/iso
	mkdir -p "$tree"
	cp -rL "$NETBOOT_DIR/debian-installer" "$tree/"
	rm -rf "$tree/debian-installer/amd64/pxelinux.0" "$tree/debian-installer/amd64/pxelinux.cfg"

	local screens=$tree/debian-installer/amd64/boot-screens module
	for module in "$screens"/*.c32; do
		cp "$SYSLINUX_MODULES/$(basename "$module")" "$module"
	done
	cp "$ISOLINUX_BIN" "$SYSLINUX_MODULES/ldlinux.c32" "$tree/"

	# The serial line mirrors the boot: prompt to COM1, so a test can wait
	# for it on the serial console. The rest is the package's PXE menu,
	# whose paths are relative to the ISO root.
	{
		echo "serial 0 115200"
		cat "$NETBOOT_DIR/debian-installer/amd64/pxelinux.cfg/default"
	} >"$tree/isolinux.cfg"

	make_isolinux_iso "$tree" "$WORK/netboot.iso" DEBIAN_12_NETBOOT
	mv "$WORK/netboot.iso" "$iso"
	log "netboot-iso: built $iso in $((SECONDS - started)) s"
}

# make_isolinux_iso writes an El Torito ISO that boots isolinux.bin from the
# tree's root. The isohybrid MBR lets the same file boot as a disk.
make_isolinux_iso() {
	local tree=$1 out=$2 volid=$3
	xorriso -as mkisofs -quiet -o "$out" -V "$volid" -J -R \
		-isohybrid-mbr /usr/lib/ISOLINUX/isohdpfx.bin \
		-b isolinux.bin -c boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table \
		"$tree"
}

# Label of the tiny installer's root file system. The same name is in
# fixtures/tiny/init.
TINY_ROOT_LABEL=tinyroot
# Drivers the tiny system loads at boot: virtio disks and NIC, and SCSI and
# IDE disks. ext4, which also mounts ext2, and AF_PACKET for udhcpc are built
# into Debian's cloud kernel.
TINY_MODULES="virtio_pci virtio_blk virtio_net virtio_scsi sd_mod ata_piix"

# build_tiny_iso makes a small installer ISO: isolinux, Debian's cloud kernel
# and an initramfs of busybox-static, dropbear and fixtures/tiny/init. At
# the boot: prompt, "install seed=URL" fetches a shell seed and installs the
# same busybox system with GRUB onto the first disk, which then boots to
# dropbear on port 22. docs/fixtures.md describes the seed.
build_tiny_iso() {
	local iso
	iso=$(fixture_path tiny-iso)
	lock_fixture tiny-iso
	if [ -f "$iso" ]; then
		log "tiny-iso: cached at $iso"
		return
	fi

	local started=$SECONDS
	new_workdir tiny-iso
	local tree=$WORK/tree isotree=$WORK/iso
	mkdir -p "$tree" "$isotree"

	local deb
	deb=$(cloud_kernel_deb)
	log "tiny-iso: kernel from $(basename "$deb")"
	dpkg-deb -x "$deb" "$WORK/kernel"

	populate_tiny_tree "$tree"
	copy_tiny_modules "$WORK/kernel" "$tree"

	# The installed system boots with an initramfs of the tree as it is now.
	# The installer's initramfs adds that and the kernel under /boot, which
	# the installer copies to the disk.
	make_initramfs "$tree" "$WORK/boot-initrd.gz"
	mkdir -p "$tree/boot"
	cp "$WORK"/kernel/boot/vmlinuz-* "$tree/boot/vmlinuz"
	cp "$WORK/boot-initrd.gz" "$tree/boot/initrd.gz"
	make_initramfs "$tree" "$isotree/initrd.gz"
	cp "$tree/boot/vmlinuz" "$isotree/vmlinuz"

	cp "$ISOLINUX_BIN" "$SYSLINUX_MODULES/ldlinux.c32" "$isotree/"
	cat >"$isotree/boot.msg" <<'MSG'

bake tiny installer. Type at the boot: prompt:
  install seed=http://10.0.2.2:PORT/seed.sh

MSG
	# prompt 1 with timeout 0 waits at boot: until a line is typed.
	cat >"$isotree/isolinux.cfg" <<'CFG'
serial 0 115200
display boot.msg
prompt 1
timeout 0
default install
label install
	kernel /vmlinuz
	append initrd=/initrd.gz console=tty0 console=ttyS0,115200 tiny.mode=install
CFG

	make_isolinux_iso "$isotree" "$WORK/tiny.iso" TINY_INSTALLER
	mv "$WORK/tiny.iso" "$iso"
	log "tiny-iso: built $iso in $((SECONDS - started)) s"
}

# cloud_kernel_deb prints the path of a linux-image-*-cloud-amd64 package:
# the one debian-disk's debootstrap downloaded, or else one apt-get
# downloads into the cache.
cloud_kernel_deb() {
	local deb
	for deb in "$FIXTURES"/cache/debootstrap/linux-image-[0-9]*-cloud-amd64_*.deb \
		"$FIXTURES"/cache/kernel/linux-image-[0-9]*-cloud-amd64_*.deb; do
		if [ -f "$deb" ]; then
			echo "$deb"
			return
		fi
	done

	local package
	package=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	if [ -z "$package" ]; then
		apt-get update -q >&2
		package=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	fi
	[ -n "$package" ] || die "apt-cache finds no kernel package behind linux-image-cloud-amd64: check /etc/apt/sources.list"
	mkdir -p "$FIXTURES/cache/kernel"
	(cd "$FIXTURES/cache/kernel" && apt-get download -q "$package" >&2) ||
		die "apt-get download $package failed: check the network and /etc/apt/sources.list"
	ls "$FIXTURES"/cache/kernel/"$package"_*.deb
}

# populate_tiny_tree writes the root file system shared by the installer and
# the installed system: busybox with a link per applet, dropbear with its
# shared libraries, the init scripts and GRUB's boot images.
populate_tiny_tree() {
	local tree=$1 files=$SCRIPT_DIR/fixtures/tiny
	mkdir -p "$tree"/{bin,sbin,usr/bin,usr/sbin,etc/init.d,root,usr/share/tiny,lib/modules/tiny}

	cp /bin/busybox "$tree/bin/busybox"
	local applet
	for applet in $(/bin/busybox --list-full); do
		[ -e "$tree/$applet" ] || ln -s /bin/busybox "$tree/$applet"
	done

	copy_with_libraries /usr/sbin/dropbear "$tree"

	install -m 755 "$files/init" "$tree/init"
	install -m 755 "$files/rcS" "$files/rcK" "$tree/etc/init.d/"
	install -m 644 "$files/inittab" "$tree/etc/inittab"
	install -m 755 "$files/udhcpc.script" "$tree/usr/share/tiny/udhcpc.script"
	echo 'root:*:0:0:root:/root:/bin/sh' >"$tree/etc/passwd"
	echo 'root:x:0:' >"$tree/etc/group"
	echo /bin/sh >"$tree/etc/shells"
	echo tiny >"$tree/etc/hostname"
	chmod 700 "$tree/root"

	cp "$GRUB_DIR/boot.img" "$tree/usr/share/tiny/boot.img"
	make_grub_core "$TINY_ROOT_LABEL" "$tree/usr/share/tiny/core.img"
}

# copy_with_libraries copies a dynamically linked binary and the shared
# libraries ldd lists for it into the same paths under a tree.
copy_with_libraries() {
	local binary=$1 tree=$2 library
	install -D -m 755 "$binary" "$tree$binary"
	for library in $(ldd "$binary" | grep -o '/[^ ]*'); do
		install -D -m 755 "$(readlink -f "$library")" "$tree$library"
	done
}

# copy_tiny_modules copies TINY_MODULES and their dependencies from an
# unpacked kernel package into lib/modules/tiny, with an "order" file that
# lists them in the order insmod must load them.
copy_tiny_modules() {
	local kernel=$1 tree=$2 version module path
	version=$(basename "$kernel"/lib/modules/*)
	depmod -b "$kernel" "$version"
	: >"$tree/lib/modules/tiny/order"
	for module in $TINY_MODULES; do
		modprobe -d "$kernel" -S "$version" --show-depends "$module" ||
			die "module $module not found in kernel $version: drop it from TINY_MODULES"
	done | awk '$1 == "insmod" { print $2 }' | while read -r path; do
		module=$(basename "$path")
		if ! grep -qx "$module" "$tree/lib/modules/tiny/order"; then
			cp "$path" "$tree/lib/modules/tiny/"
			echo "$module" >>"$tree/lib/modules/tiny/order"
		fi
	done
}

make_initramfs() {
	local tree=$1 out=$2
	(cd "$tree" && find . | cpio --quiet -o -H newc | gzip -9) >"$out"
}

main() {
	[ $# -ge 1 ] || die "usage: $0 debian-disk|netboot-iso|tiny-iso|all|path NAME"
	case "$1" in
	path)
		[ $# -eq 2 ] || die "usage: $0 path NAME"
		fixture_path "$2"
		return
		;;
	debian-disk | netboot-iso | tiny-iso | all) ;;
	*) die "unknown command \"$1\": expected debian-disk, netboot-iso, tiny-iso, all or path NAME" ;;
	esac

	require_root "$@"
	ensure_deps
	case "$1" in
	debian-disk) build_debian_disk ;;
	netboot-iso) build_netboot_iso ;;
	tiny-iso) build_tiny_iso ;;
	all)
		# Each build runs in a subshell so its EXIT trap removes its own
		# work directory.
		(build_debian_disk)
		(build_netboot_iso)
		(build_tiny_iso)
		;;
	esac
}

# exit sits on the same line as main, so bash never reads past it from a
# copy of this script edited while a build runs.
main "$@"; exit
