#!/usr/bin/env bash
# Builds the container image without a Docker engine, smoke-tests it and
# exports it as an OCI archive:
#   1. a static binary: cargo build --release --target x86_64-unknown-linux-musl
#   2. a root filesystem: the binary, the CA bundle, passwd/group for 65532
#   3. buildah build --isolation chroot --pull=never (FROM scratch)
#   4. podman run (runc, no network): --version, and `check` on the example
#      config; the image must be under 30 MB
#   5. buildah push … oci-archive:<target dir>/image/route53-failover-<version>.oci.tar
# Needs: rustup's musl target, Debian's musl-tools, buildah, podman, runc,
# ca-certificates (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
image=localhost/route53-failover:$version
# cargo puts its output under CARGO_TARGET_DIR when that is set.
target_dir=${CARGO_TARGET_DIR:-target}
out=$target_dir/image
max_bytes=$((30 * 1000 * 1000))

echo "--- static binary ($target)"
rustup target list --installed | grep -qx $target || rustup target add $target
cargo build --release --locked --target $target
bin=$target_dir/$target/release/route53-failover
if ! file "$bin" | grep -q 'statically linked\|static-pie linked'; then
  echo "not a static binary: $(file "$bin")"; exit 1
fi

echo "--- root filesystem"
rm -rf "$out/rootfs"
mkdir -p "$out/rootfs/usr/local/bin" "$out/rootfs/etc/ssl/certs" "$out/rootfs/tmp"
cp "$bin" "$out/rootfs/usr/local/bin/route53-failover"
strip "$out/rootfs/usr/local/bin/route53-failover"
cp /etc/ssl/certs/ca-certificates.crt "$out/rootfs/etc/ssl/certs/"
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' >"$out/rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$out/rootfs/etc/group"
chmod 1777 "$out/rootfs/tmp"
cp Containerfile "$out/"

echo "--- buildah build"
buildah build --isolation chroot --pull=never --layers=false \
  --label org.opencontainers.image.title=route53-failover \
  --label "org.opencontainers.image.version=$version" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  -f "$out/Containerfile" -t "$image" "$out"

echo "--- smoke test (podman, runc, no network)"
run() {
  podman --runtime runc run --rm --network none \
    --ulimit nofile=4096:4096 --ulimit nproc=1024:1024 \
    --read-only --cap-drop ALL --security-opt no-new-privileges "$@"
}
got=$(run "$image" --version)
echo "$got"
[ "$got" = "route53-failover $version" ] || { echo "unexpected --version: $got"; exit 1; }
run -v "$PWD/config:/config:ro" "$image" check --config /config/example.yaml
user=$(podman image inspect --format '{{.Config.User}}' "$image")
[ "$user" = "65532:65532" ] || { echo "image user is $user"; exit 1; }
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image size: $size bytes"
[ "$size" -lt "$max_bytes" ] || { echo "image is $size bytes, over $max_bytes"; exit 1; }

echo "--- export"
rm -f "$out/route53-failover-$version.oci.tar"
buildah push "$image" "oci-archive:$out/route53-failover-$version.oci.tar:route53-failover:$version"
ls -l "$out/route53-failover-$version.oci.tar"
echo "image ok: $image"
