#!/usr/bin/env bash
# Installs what building and testing Skye needs on a Debian/Ubuntu machine, and checks the Rust
# toolchain. Safe to run repeatedly: it installs only what is missing.
set -euo pipefail

need_rust="1.95"
have_rust=$(rustc --version 2>/dev/null | awk '{print $2}')
if [ -z "$have_rust" ]; then
  echo "setup: rustc not found; install Rust $need_rust or newer (https://rustup.rs)" >&2
  exit 1
fi
if [ "$(printf '%s\n%s\n' "$need_rust" "$have_rust" | sort -V | head -n1)" != "$need_rust" ]; then
  echo "setup: rustc $have_rust is older than $need_rust" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    echo "setup: cargo $component missing; trying rustup component add $component"
    rustup component add "$component"
  fi
done

# System packages (Debian names): protoc generates the gRPC types (crates/skye-proto, and
# etcd-client's); a C toolchain builds the bundled librdkafka (feature `kafka`).
packages=(protobuf-compiler)
command -v cc >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || packages+=(build-essential)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] && ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: missing ${missing[*]} and no apt-get here; install them with your package manager" >&2
  exit 1
fi
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
echo "setup: ok (rustc $have_rust)"
