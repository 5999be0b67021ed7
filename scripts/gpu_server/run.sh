#!/bin/sh
# Runs `deno task gpu-check` on a bare, offline Linux x86-64 GPU machine from the folder that
# scripts/pack_gpu_check.ts made (no network, no Node, no Deno needed; xz and tar are):
#   sh run.sh                      webgpu on the GPU, compared with wasm; writes reports/ beside this script
#   sh run.sh --quick              small sizes
#   sh run.sh --backend webgpu-software --quick     the software adapter (proves the folder without a GPU)
# It unpacks the Deno binary and Debian's Vulkan loader (libvulkan1) into .unpacked/ once, finds the NVIDIA
# Vulkan driver manifest when the loader would not, and selects wgpu's Vulkan backend.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache="${GPU_CHECK_CACHE:-$here/.unpacked}"
mkdir -p "$cache"
command -v xz >/dev/null 2>&1 || { echo "run.sh: xz is needed to unpack deno.xz (install xz-utils)" >&2; exit 1; }

if [ ! -x "$cache/deno" ]; then
  echo "run.sh: unpacking Deno ..." >&2
  xz -dc "$here/deno.xz" > "$cache/deno.part"
  chmod +x "$cache/deno.part"
  mv "$cache/deno.part" "$cache/deno"
fi
deno="$cache/deno"

# Debian's Vulkan loader, unless the system has libvulkan.so.1 already (GPU_CHECK_BUNDLED_VULKAN=1: use ours anyway).
system_loader=""
for dir in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /lib/x86_64-linux-gnu; do
  [ -e "$dir/libvulkan.so.1" ] && system_loader="$dir/libvulkan.so.1" && break
done
if [ -z "$system_loader" ] || [ "${GPU_CHECK_BUNDLED_VULKAN:-}" = 1 ]; then
  lib="$cache/vulkan/usr/lib/x86_64-linux-gnu"
  if [ ! -e "$lib/libvulkan.so.1" ]; then
    echo "run.sh: unpacking the Vulkan loader from $(basename "$here"/libvulkan1_*.deb) ..." >&2
    mkdir -p "$cache/vulkan"
    "$deno" run -A "$here/app/unpack_deb.js" "$here"/libvulkan1_*.deb data.tar.xz "$cache/vulkan/data.tar.xz"
    tar -xJf "$cache/vulkan/data.tar.xz" -C "$cache/vulkan"
    rm -f "$cache/vulkan/data.tar.xz"
  fi
  export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

# The NVIDIA Vulkan driver (ICD) manifest: containers get it only with NVIDIA_DRIVER_CAPABILITIES
# including `graphics`; the NVIDIA container toolkit may leave it where the loader does not look.
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -z "${VK_ICD_FILENAMES:-}" ]; then
  for icd in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
    /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/share/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
  done
fi
export DENO_WEBGPU_BACKEND="${DENO_WEBGPU_BACKEND:-vulkan}"
export DENO_DIR="$cache/deno_dir" DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$cache}"
exec "$deno" run -A --no-config --no-lock "$here/app/gpu-check.js" --out "$here/reports" "$@"
