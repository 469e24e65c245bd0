#!/usr/bin/env bash
# Installs what the test suite and the examples need, from Debian's packages, idempotently.
#   scripts/setup-deps.sh tools   -> toolchains used as oracles (cross binutils, multilib, lld, qemu, busybox)
#   scripts/setup-deps.sh xen     -> Debian's Xen 4.17 packages downloaded and unpacked into .cache/debian/root
#   scripts/setup-deps.sh xen-min -> only the hypervisor and its -dbg package (xen.gz, xen.efi, xen-syms):
#                                    what `npm run example` and a `build`/`verify` need; the kernel,
#                                    tools and libraries are for `try`
#   scripts/setup-deps.sh patch   -> what `xsplice patch` needs to rebuild a Debian Xen base (dpkg-dev, flex, bison, lsb-release, patch)
#   scripts/setup-deps.sh all     -> tools and xen (default)
# Nothing is committed; the cache lives under .cache/ (git-ignored). Safe to run concurrently (flock).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache="$here/.cache/debian"
mkdir -p "$cache/debs" "$cache/root"
exec 9>"$cache/.lock"
flock 9

# Debian 12 main's Xen: it stays downloadable (the security pocket keeps only its newest version, so a
# pin there breaks at the next update), and its source package is served too (the base of `patch`).
XEN_VERSION=4.17.5+72-g01140da4e8-1
TOOL_PKGS=(binutils gcc g++ gcc-multilib g++-multilib lld lld-16 binutils-s390x-linux-gnu
  binutils-powerpc-linux-gnu binutils-aarch64-linux-gnu binutils-arm-linux-gnueabihf
  qemu-system-x86 busybox-static cpio xz-utils gzip)
XEN_PKGS=("xen-hypervisor-4.17-amd64=$XEN_VERSION" "xen-hypervisor-4.17-amd64-dbg=$XEN_VERSION"
  "xen-utils-4.17=$XEN_VERSION" "libxenmisc4.17=$XEN_VERSION" "xen-utils-common=$XEN_VERSION"
  "libxencall1=$XEN_VERSION" "libxendevicemodel1=$XEN_VERSION" "libxenevtchn1=$XEN_VERSION"
  "libxenforeignmemory1=$XEN_VERSION" "libxengnttab1=$XEN_VERSION" "libxenhypfs1=$XEN_VERSION"
  "libxenstore4=$XEN_VERSION" "libxentoolcore1=$XEN_VERSION" "libxentoollog1=$XEN_VERSION" libyajl2 libext2fs2 libncurses6 libtinfo6
  libzstd1 liblzma5 libuuid1 zlib1g linux-image-amd64)

apt_updated=""
apt_update_once() {
  if [ -z "$apt_updated" ]; then
    # A stale or empty list makes apt find nothing; refresh at most once per run, and not at all
    # when the lists are younger than a day.
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
      apt-get update -qq >/dev/null
    fi
    apt_updated=1
  fi
}

need_tools() {
  local missing=()
  for p in "${TOOL_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# `xsplice patch`: apt-get source + dpkg-source (dpkg-dev), Xen's kconfig (flex, bison), the "Debian"
# string Xen's build embeds (lsb-release), the compiler/linker names Debian's build uses, and
# patch(1) for bench/patch.mjs's make route.
PATCH_PKGS=(dpkg-dev flex bison lsb-release make gcc binutils python3 xz-utils debian-archive-keyring patch)
need_patch() {
  local missing=()
  for p in "${PATCH_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

XEN_MIN_PKGS=("xen-hypervisor-4.17-amd64=$XEN_VERSION" "xen-hypervisor-4.17-amd64-dbg=$XEN_VERSION")

# Another version unpacked here before: start the tree afresh so no file of it lingers.
fresh_tree() {
  rm -rf "$cache/root" "$cache/debs"
  mkdir -p "$cache/root" "$cache/debs"
}

need_xen_min() {
  if [ -f "$cache/root/.complete-$XEN_VERSION" ] || [ -f "$cache/root/.complete-min-$XEN_VERSION" ]; then return 0; fi
  fresh_tree
  apt_update_once
  (cd "$cache/debs" && apt-get download -qq -o APT::Sandbox::User=root "${XEN_MIN_PKGS[@]}" >/dev/null)
  for d in "$cache"/debs/*.deb; do dpkg -x "$d" "$cache/root"; done
  touch "$cache/root/.complete-min-$XEN_VERSION"
}

need_xen() {
  if [ -f "$cache/root/.complete-$XEN_VERSION" ]; then return 0; fi
  # The hypervisor of this version may be there already (xen-min): keep it, add the rest.
  [ -f "$cache/root/.complete-min-$XEN_VERSION" ] || fresh_tree
  apt_update_once
  (cd "$cache/debs" && apt-get download -qq -o APT::Sandbox::User=root "${XEN_PKGS[@]}" >/dev/null)
  # linux-image-amd64 is a metapackage: fetch the kernel image it depends on.
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  (cd "$cache/debs" && apt-get download -qq -o APT::Sandbox::User=root "$kpkg" >/dev/null)
  for d in "$cache"/debs/*.deb; do dpkg -x "$d" "$cache/root"; done
  touch "$cache/root/.complete-$XEN_VERSION"
}

case "${1:-all}" in
  tools) need_tools ;;
  xen) need_xen ;;
  xen-min) need_xen_min ;;
  patch) need_patch ;;
  all) need_tools; need_xen ;;
  *) echo "usage: $0 [tools|xen|xen-min|patch|all]" >&2; exit 2 ;;
esac
