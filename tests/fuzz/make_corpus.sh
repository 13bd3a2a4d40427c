#!/usr/bin/env bash
# Regenerates the seed corpora of the storage fuzz targets from the real repository committed in
# tests/data/repo-v1 (written by mailvault's own encoder): the sealed files as they are for the
# sealed target, and as header JSON, NUL, decompressed body (tests/fuzz/fuzz_input.h) for the
# manifest and index targets; config and keys/default for the config target. The other
# corpora are hand-made or copied from tests/data (see corpus/README.md). Needs python3 and zstd.
set -euo pipefail
cd "$(dirname "$0")"
repo=../data/repo-v1
c=corpus
mkdir -p "$c/sealed" "$c/manifest" "$c/index" "$c/config"
cp "$repo/config" "$c/config/config"
cp "$repo/keys/default" "$c/config/keys_default"
unseal() {   # FILE OUT: header, NUL, body
  python3 - "$1" "$2" <<'PY'
import struct, subprocess, sys
data = open(sys.argv[1], 'rb').read()
hlen = struct.unpack_from('<I', data, 8)[0]
header = data[12:12 + hlen]
blen = struct.unpack_from('<Q', data, 12 + hlen)[0]
body = subprocess.run(['zstd', '-dcq'], input=data[20 + hlen:20 + hlen + blen], check=True,
                      stdout=subprocess.PIPE).stdout
open(sys.argv[2], 'wb').write(header + b'\0' + body)
PY
}
for f in "$repo"/snapshots/*; do
  cp "$f" "$c/sealed/snapshot-$(basename "$f" | cut -c1-8)"
  unseal "$f" "$c/manifest/$(basename "$f" | cut -c1-8)"
done
for f in "$repo"/index/*; do
  cp "$f" "$c/sealed/index-$(basename "$f" | cut -c1-8)"
  unseal "$f" "$c/index/$(basename "$f" | cut -c1-8)"
done
