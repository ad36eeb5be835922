# shellcheck shell=bash
# Base images for building the repository's Dockerfile where no image registry is reachable (as
# on these machines): made locally from Debian's packages with debootstrap and imported into
# podman's storage, then handed to the Dockerfile through its build arguments:
#   localhost/scorer-base/debian:bookworm-slim   for DEBIAN_IMAGE (the runtime stage): Debian 12
#       minbase, trimmed like debian:bookworm-slim (no docs, man pages, locales, apt lists);
#   localhost/scorer-base/rust:1.95-bookworm     for RUST_IMAGE and PYTHON_IMAGE (the build and
#       ONNX Runtime stages): the same base with gcc, g++, make, pkg-config, python3 and pip, and
#       this machine's Rust toolchain (the one the repository builds with) in /usr/local/rust.
# Each is built once and kept (`images_base_up` skips those present); SCORER_IMAGE_BASES_REBUILD=1
# makes them anew. Needs root, debootstrap and podman/buildah (Debian packages, installed when
# missing).
IMAGE_DEBIAN="localhost/scorer-base/debian:bookworm-slim"
IMAGE_RUST="localhost/scorer-base/rust:1.95-bookworm"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

# podman's and buildah's settings for every container these scripts start (image-check,
# wheel-check, the build steps, and the ones podman-compose starts): runc, and this shell's own
# limits on open files and processes, since the runtime's defaults are above the hard limits on
# these machines and it refuses to start a container with them. Through their own configuration,
# so neither the compose file nor each `podman run` carries them.
podman_conf_up() {
  local conf="${SCORER_CACHE:-$HOME/.cache/scorer}/containers.conf"
  mkdir -p "$(dirname "$conf")"
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=4096:4096"]\n[engine]\nruntime = "runc"\n' \
    "$(ulimit -Sn)" "$(ulimit -Hn)" >"$conf"
  export CONTAINERS_CONF="$conf"
}

images_tools_up() {
  local missing=()
  for tool in podman buildah runc debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "scorer: installing ${missing[*]} (Debian packages)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      podman buildah runc debootstrap uidmap fuse-overlayfs >/dev/null
  fi
}

image_present() {
  podman image exists "$1"
}

# The runtime base: debootstrap minbase, then what debian:bookworm-slim leaves out.
image_base_debian() {
  local root
  root="$(mktemp -d /tmp/scorer-debootstrap.XXXXXX)"
  echo "scorer: debootstrap --variant=minbase bookworm (for $IMAGE_DEBIAN)" >&2
  debootstrap --variant=minbase bookworm "$root" "$DEBIAN_MIRROR" >/dev/null
  # As the slim images do: dpkg keeps no docs, man pages or locales from later installs either.
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
  # With bookworm's updates and security updates, as the published base images are.
  cat >"$root/etc/apt/sources.list" <<LIST
deb $DEBIAN_MIRROR bookworm main
deb $DEBIAN_MIRROR bookworm-updates main
deb $DEBIAN_SECURITY_MIRROR bookworm-security main
LIST
  chroot "$root" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -qq >/dev/null && apt-get clean'
  # ... and apt keeps no package caches or downloaded .debs after an install in a build step.
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -type f -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{man,info,locale,lintian}/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
  tar -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' - "$IMAGE_DEBIAN" >/dev/null
  rm -rf "$root"
}

# The build base: the runtime base, compilers and Python, this machine's Rust toolchain and CA
# bundle (HTTPS to crates.io and PyPI from inside the build goes through the same trust store as
# the host's clients).
image_base_rust() {
  local ctr toolchain
  toolchain="$(rustc --print sysroot)"
  echo "scorer: building $IMAGE_RUST from $IMAGE_DEBIAN and $toolchain" >&2
  ctr="$(buildah from --pull-never "$IMAGE_DEBIAN")"
  buildah run --isolation chroot "$ctr" -- sh -c 'apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
       ca-certificates gcc g++ make libc6-dev pkg-config python3 python3-pip >/dev/null \
    && rm -rf /var/lib/apt/lists/*'
  buildah copy "$ctr" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
  buildah copy "$ctr" "$toolchain/bin" /usr/local/rust/bin >/dev/null
  buildah copy "$ctr" "$toolchain/lib" /usr/local/rust/lib >/dev/null
  buildah config --env PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env CARGO_HOME=/usr/local/cargo "$ctr"
  buildah run --isolation chroot "$ctr" -- sh -c 'mkdir -p /usr/local/cargo && rustc --version && cargo --version'
  buildah commit -q --rm "$ctr" "$IMAGE_RUST" >/dev/null
}

images_base_up() {
  images_tools_up
  podman_conf_up
  if [ -n "${SCORER_IMAGE_BASES_REBUILD:-}" ]; then
    podman rmi -f "$IMAGE_RUST" "$IMAGE_DEBIAN" >/dev/null 2>&1 || true
  fi
  image_present "$IMAGE_DEBIAN" || image_base_debian
  image_present "$IMAGE_RUST" || image_base_rust
}
