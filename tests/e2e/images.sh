# Local images without a registry (sourced by lib.sh). Slow builds are cached in $E2E_CACHE as
# `docker save | zstd` archives named after a hash of their recipe, so a changed recipe rebuilds.

E2E_BUSYBOX_IMAGE=local/busybox:1
E2E_MAILSTACK_IMAGE=local/mailstack:test
E2E_MAILSTACK_PACKAGES=dovecot-core,dovecot-imapd,dovecot-lmtpd,sqlite3

e2e_image_present() { dk image inspect "$1" >/dev/null 2>&1; }

# The Debian mirror apt is configured with here (debootstrap must use a reachable one).
e2e_debian_mirror() {
  local m
  m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
      | grep -v security | head -1)
  [[ -n "$m" ]] || m=$(grep -hsE '^deb ' /etc/apt/sources.list | awk '{print $2}' | head -1)
  echo "${m:-http://deb.debian.org/debian}"
}

# busybox-static: one binary plus its applet links; seconds to build, so never cached.
e2e_build_busybox() {
  e2e_image_present "$E2E_BUSYBOX_IMAGE" && return 0
  local dir="$E2E_ROOT/busybox-rootfs" bb; bb=$(command -v busybox)
  rm -rf "$dir"; mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc"
  cp "$bb" "$dir/bin/busybox"
  "$dir/bin/busybox" --list | while read -r applet; do
    [[ "$applet" == busybox ]] || ln -sf busybox "$dir/bin/$applet"
  done
  echo 'root:x:0:0:root:/:/bin/sh' >"$dir/etc/passwd"
  echo 'root:x:0:' >"$dir/etc/group"
  tar --numeric-owner -C "$dir" -c . | dk import --change 'CMD ["/bin/sh"]' - "$E2E_BUSYBOX_IMAGE" \
    >/dev/null || e2e_die "docker import of $E2E_BUSYBOX_IMAGE failed"
  rm -rf "$dir"
  e2e_log "built $E2E_BUSYBOX_IMAGE"
}

# Loads IMAGE from the cache archive CACHEFILE when present. Returns 1 on a miss.
e2e_cache_load() {
  local image="$1" file="$2"
  [[ -s "$file" ]] || return 1
  e2e_log "loading $image from cache $file"
  if zstd -dc "$file" | dk load >/dev/null && e2e_image_present "$image"; then return 0; fi
  e2e_log "cache file $file is unusable; removing it and rebuilding"
  rm -f "$file"; return 1
}

e2e_cache_save() {
  local image="$1" file="$2"
  mkdir -p "$(dirname "$file")" || return 0
  dk save "$image" | zstd -q -T0 -3 -o "$file.tmp" && mv "$file.tmp" "$file" \
    && e2e_log "cached $image in $file ($(du -h "$file" | cut -f1))"
  rm -f "$file.tmp"
}

# Debian bookworm with dovecot and sqlite3, built with debootstrap (the slow part: ~2-3 min cold).
e2e_build_mailstack() {
  e2e_image_present "$E2E_MAILSTACK_IMAGE" && return 0
  local key; key=$(printf '%s\n' v2 bookworm "$E2E_MAILSTACK_PACKAGES" | sha256sum | cut -c1-12)
  local cachefile="$E2E_CACHE/mailstack-$key.tar.zst"
  e2e_cache_load "$E2E_MAILSTACK_IMAGE" "$cachefile" && return 0
  local root="$E2E_ROOT/mailstack-rootfs" mirror; mirror=$(e2e_debian_mirror)
  e2e_log "debootstrap bookworm with $E2E_MAILSTACK_PACKAGES from $mirror (~1-3 min; cached afterwards)"
  mkdir -p "$root"
  mountpoint -q "$root" || mount -t tmpfs -o size=2g,mode=0755 tmpfs "$root" \
    || e2e_log "no tmpfs for the rootfs; building on disk"
  mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
  echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/unsafe-io"
  if ! debootstrap --variant=minbase --include="$E2E_MAILSTACK_PACKAGES" bookworm "$root" \
       "$mirror" >"$E2E_ROOT/debootstrap.log" 2>&1; then
    tail -20 "$E2E_ROOT/debootstrap.log" >&2
    umount "$root" 2>/dev/null
    e2e_die "debootstrap failed; see $E2E_ROOT/debootstrap.log"
  fi
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root/etc/dpkg/dpkg.cfg.d/unsafe-io"
  # Mount points the stack's volumes are seeded from: dovecot delivers as uid/gid 8 (mail).
  mkdir -p "$root/mail" "$root/data"
  chown 8:8 "$root/mail"; chmod 0770 "$root/mail"
  tar --numeric-owner -C "$root" -c . \
    | dk import --change 'CMD ["/bin/bash"]' - "$E2E_MAILSTACK_IMAGE" >/dev/null \
    || e2e_die "docker import of $E2E_MAILSTACK_IMAGE failed"
  umount "$root" 2>/dev/null; rm -rf "$root"
  e2e_log "built $E2E_MAILSTACK_IMAGE"
  e2e_cache_save "$E2E_MAILSTACK_IMAGE" "$cachefile"
}
