#!/usr/bin/env bash
# Installs what the test suite and the examples need, from Debian's packages, idempotently.
#   scripts/setup-deps.sh tools   -> toolchains used as oracles (cross binutils, multilib, lld, qemu, busybox)
#   scripts/setup-deps.sh xen     -> Debian's Xen 4.17 packages downloaded and unpacked into .cache/debian/root
#   scripts/setup-deps.sh xen-min -> only the hypervisor and its -dbg package (xen.gz, xen.efi, xen-syms):
#                                    what `npm run example` and a `build`/`verify` need; the kernel,
#                                    tools and libraries are for `try`
#   scripts/setup-deps.sh patch   -> what `xsplice patch` needs to rebuild a Debian Xen base (dpkg-dev, flex, bison, lsb-release, patch)
#   scripts/setup-deps.sh all     -> tools, xen and arm64-livepatch (default)
#   scripts/setup-deps.sh arm64   -> qemu-system-arm, and Debian 12's arm64 Xen 4.17
#                                    (hypervisor, -dbg, tools and libraries, kernel, busybox-static) unpacked
#                                    into .cache/debian-arm64/root, fetched with a private apt state for the
#                                    arm64 architecture (the system's apt configuration is never changed);
#                                    the aarch64 cross gcc unpacked (not installed) into .cache/debian-arm64/cross
#   scripts/setup-deps.sh arm64-livepatch -> the above, and Debian's Xen source cross-built for arm64 with
#                                    CONFIG_LIVEPATCH=y (Debian's arm64 binary has no live patching)
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

# ---- arm64 ---------------------------------------------------------------------------------
ARM64_TOOL_PKGS=(qemu-system-arm binutils-aarch64-linux-gnu)
# Debian's gcc-12-aarch64-linux-gnu Conflicts: gcc-multilib (which the x86 tests need), so the cross
# compiler is never installed: its packages are unpacked into .cache/debian-arm64/cross and run from
# there (gcc finds cc1 relative to itself; the assembler and linker are binutils-aarch64-linux-gnu's).
ARM64_CC_PKGS=(gcc-aarch64-linux-gnu gcc-12-aarch64-linux-gnu cpp-aarch64-linux-gnu cpp-12-aarch64-linux-gnu gcc-12-aarch64-linux-gnu-base)
# Debian 12 main's arm64 build of the same Xen source version as the amd64 pin.
ARM64_XEN_VERSION=$XEN_VERSION
ARM64_PKGS=("xen-hypervisor-4.17-arm64=$ARM64_XEN_VERSION" "xen-hypervisor-4.17-arm64-dbg=$ARM64_XEN_VERSION"
  "xen-utils-4.17=$ARM64_XEN_VERSION" "libxenmisc4.17=$ARM64_XEN_VERSION"
  "libxencall1=$ARM64_XEN_VERSION" "libxendevicemodel1=$ARM64_XEN_VERSION" "libxenevtchn1=$ARM64_XEN_VERSION"
  "libxenforeignmemory1=$ARM64_XEN_VERSION" "libxengnttab1=$ARM64_XEN_VERSION" "libxenhypfs1=$ARM64_XEN_VERSION"
  "libxenstore4=$ARM64_XEN_VERSION" "libxentoolcore1=$ARM64_XEN_VERSION" "libxentoollog1=$ARM64_XEN_VERSION"
  libc6 libgcc-s1 libyajl2 libext2fs2 libncurses6 libtinfo6 libzstd1 liblzma5 libuuid1 zlib1g libcom-err2
  libblkid1 libfdt1 busybox-static linux-image-arm64)
acache="$here/.cache/debian-arm64"

# apt with its own state, lists, cache and sources under $acache/apt, for arm64 only.
arm64_apt() {
  local a="$acache/apt"
  "$@" -o Dir::State="$a/state" -o Dir::State::status="$a/state/status" -o Dir::Cache="$a/cache" \
    -o Dir::Etc::SourceList="$a/sources.list" -o Dir::Etc::SourceParts="$a/sources.list.d" \
    -o Dir::Etc::Preferences="$a/preferences" -o Dir::Etc::PreferencesParts="$a/preferences.d" \
    -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o APT::Sandbox::User=root \
    -o Debug::NoLocking=1 -qq
}

need_arm64_tools() {
  local missing=()
  for p in "${ARM64_TOOL_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

need_arm64_cc() {
  local x="$acache/cross"
  if [ -x "$x/root/usr/bin/aarch64-linux-gnu-gcc" ] && [ -f "$x/.complete" ]; then return 0; fi
  rm -rf "$x"
  mkdir -p "$x/debs" "$x/root/usr/aarch64-linux-gnu"
  apt_update_once
  (cd "$x/debs" && apt-get download -qq -o APT::Sandbox::User=root "${ARM64_CC_PKGS[@]}" >/dev/null)
  for d in "$x"/debs/*.deb; do dpkg -x "$d" "$x/root"; done
  ln -sfn /usr/aarch64-linux-gnu/bin "$x/root/usr/aarch64-linux-gnu/bin"
  touch "$x/.complete"
}

need_arm64() {
  need_arm64_tools
  need_arm64_cc
  if [ -f "$acache/root/.complete-$ARM64_XEN_VERSION" ]; then return 0; fi
  rm -rf "$acache/root" "$acache/debs"
  local a="$acache/apt"
  mkdir -p "$acache/root" "$acache/debs" "$a/state/lists/partial" "$a/cache/archives/partial" "$a/sources.list.d" "$a/preferences.d"
  : >"$a/state/status"
  : >"$a/preferences"
  cat >"$a/sources.list" <<SRC
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
SRC
  arm64_apt apt-get update >/dev/null
  (cd "$acache/debs" && arm64_apt apt-get download "${ARM64_PKGS[@]}" >/dev/null)
  # linux-image-arm64 is a metapackage: fetch the kernel image it depends on.
  kpkg=$(arm64_apt apt-cache depends linux-image-arm64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  (cd "$acache/debs" && arm64_apt apt-get download "${kpkg%:arm64}" >/dev/null)
  for d in "$acache"/debs/*.deb; do dpkg -x "$d" "$acache/root"; done
  touch "$acache/root/.complete-$ARM64_XEN_VERSION"
}

# Debian 12's arm64 hypervisor is built without CONFIG_LIVEPATCH (its boot/xen-4.17-arm64.config says
# "# CONFIG_LIVEPATCH is not set"), so no payload can ever be applied to it. For live patching on
# arm64, the same Debian source package is cross-built with Debian's arm64 configuration plus
# CONFIG_LIVEPATCH=y: .cache/debian-arm64/livepatch/{xen,xen-syms,xen.config}, kept also in the cache outside
# the repository ($XSPLICE_CACHE_DIR or ~/.cache/xsplice: arm64-livepatch/VERSION) for the next clone.
need_arm64_livepatch() {
  need_arm64
  local out="$acache/livepatch"
  if [ -f "$out/.complete-$ARM64_XEN_VERSION" ]; then return 0; fi
  # The cross-built hypervisor is also kept outside the repository (beside patch's x86 base), so a
  # fresh clone (each CI run) copies it instead of building it again.
  local keep="${XSPLICE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/xsplice}/arm64-livepatch/$ARM64_XEN_VERSION"
  if [ -f "$keep/.complete" ]; then
    rm -rf "$out"
    mkdir -p "$out"
    cp "$keep/xen" "$keep/xen-syms" "$keep/xen.config" "$out/"
    touch "$out/.complete-$ARM64_XEN_VERSION"
    return 0
  fi
  local a="$acache/apt-src" src="$acache/src"
  rm -rf "$out" "$src"
  mkdir -p "$out" "$src" "$a/state/lists/partial" "$a/cache/archives/partial" "$a/sources.list.d" "$a/preferences.d"
  : >"$a/state/status"
  : >"$a/preferences"
  cat >"$a/sources.list" <<SRC
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
SRC
  local o=(-o Dir::State="$a/state" -o Dir::State::status="$a/state/status" -o Dir::Cache="$a/cache"
    -o Dir::Etc::SourceList="$a/sources.list" -o Dir::Etc::SourceParts="$a/sources.list.d"
    -o Dir::Etc::Preferences="$a/preferences" -o Dir::Etc::PreferencesParts="$a/preferences.d"
    -o APT::Sandbox::User=root -o Debug::NoLocking=1 -qq)
  apt-get "${o[@]}" update >/dev/null
  (cd "$src" && apt-get "${o[@]}" source --download-only "xen=$ARM64_XEN_VERSION" >/dev/null)
  (cd "$src" && dpkg-source -x --no-check ./*.dsc tree >/dev/null)
  local t="$src/tree/xen"
  cp "$acache/root/boot/xen-4.17-arm64.config" "$t/.config"
  sed -i 's/^# CONFIG_LIVEPATCH is not set$/CONFIG_LIVEPATCH=y/' "$t/.config"
  export PATH="$acache/cross/root/usr/bin:$PATH"
  local mk=(-C "$t" XEN_TARGET_ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- XEN_BUILD_DATE="Thu Jan  1 00:00:00 UTC 1970"
    XEN_BUILD_HOST=xsplice XEN_WHOAMI=xsplice XEN_DOMAIN=xsplice)
  make "${mk[@]}" olddefconfig >"$out/build.log" 2>&1
  grep -q '^CONFIG_LIVEPATCH=y' "$t/.config"
  make "${mk[@]}" -j"$(nproc)" >>"$out/build.log" 2>&1
  cp "$t/xen" "$out/xen"
  cp "$t/xen-syms" "$out/xen-syms"
  cp "$t/.config" "$out/xen.config"
  touch "$out/.complete-$ARM64_XEN_VERSION"
  # Kept for the next clone: written under a temporary name, the marker last, then renamed in place.
  mkdir -p "$(dirname "$keep")"
  local tmp="$keep.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  cp "$out/xen" "$out/xen-syms" "$out/xen.config" "$tmp/"
  touch "$tmp/.complete"
  rm -rf "$keep"
  mv "$tmp" "$keep"
}

# Versions of xen-hypervisor-4.17-ARCH apt offers now (one a line, apt's order), for `try` to find
# the stock build a payload's xen_depends names.
xen_versions() {
  local arch=$1
  case "$arch" in
    amd64) apt_update_once; apt-cache madison xen-hypervisor-4.17-amd64 | awk -F'|' '{gsub(/ /,"",$2); print $2}' | awk '!seen[$0]++' ;;
    arm64) need_arm64 >/dev/null; arm64_apt apt-cache madison xen-hypervisor-4.17-arm64 | awk -F'|' '{gsub(/ /,"",$2); print $2}' | awk '!seen[$0]++' ;;
    *) echo "xen-versions: unknown architecture $arch" >&2; exit 2 ;;
  esac
}

# One more Debian Xen version's hypervisor (image and -dbg symbols) unpacked into ROOT, which must
# be .cache/debian-versions/VERSION_ARCH/root. Marker ROOT/.complete holds the version.
xen_version() {
  local version=$1 arch=$2 root=$3
  case "$root" in "$here/.cache/debian-versions/"*/root) ;; *) echo "xen-version: ROOT must be under .cache/debian-versions" >&2; exit 2 ;; esac
  if [ -f "$root/.complete" ]; then return 0; fi
  local debs="$(dirname "$root")/debs"
  rm -rf "$root" "$debs"
  mkdir -p "$root" "$debs"
  local pk=("xen-hypervisor-4.17-$arch=$version" "xen-hypervisor-4.17-$arch-dbg=$version")
  case "$arch" in
    amd64) apt_update_once; (cd "$debs" && apt-get download -qq -o APT::Sandbox::User=root "${pk[@]}" >/dev/null) ;;
    arm64) need_arm64 >/dev/null; (cd "$debs" && arm64_apt apt-get download "${pk[@]}" >/dev/null) ;;
    *) echo "xen-version: unknown architecture $arch" >&2; exit 2 ;;
  esac
  for d in "$debs"/*.deb; do dpkg -x "$d" "$root"; done
  echo "$version" >"$root/.complete"
}

case "${1:-all}" in
  xen-versions) xen_versions "${2:?architecture}" ;;
  xen-version) xen_version "${2:?version}" "${3:?architecture}" "${4:?root}" ;;
  tools) need_tools ;;
  xen) need_xen ;;
  xen-min) need_xen_min ;;
  patch) need_patch ;;
  arm64) need_arm64 ;;
  arm64-livepatch) need_arm64_livepatch ;;
  all) need_tools; need_xen; need_arm64_livepatch ;;
  *) echo "usage: $0 [tools|xen|xen-min|patch|arm64|arm64-livepatch|xen-versions ARCH|xen-version VERSION ARCH ROOT|all]" >&2; exit 2 ;;
esac
