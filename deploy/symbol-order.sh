#!/usr/bin/env bash
# Writes deploy/rosterd.symbol-order: the functions a rosterd agent runs (as callgrind lists them), for the
# linker to place together (--symbol-ordering-file, see the Dockerfile). An agent's resident code is every
# 64 KiB of the binary it touches, so with the functions it runs packed together the rest of the binary is never
# mapped (docs/performance.md, "Where an agent's memory goes").
#
#   deploy/symbol-order.sh target/x86_64-unknown-linux-gnu/release/rosterd [deploy/rosterd.symbol-order]
#
# Needs valgrind (callgrind), curl, and the roster binary beside rosterd. It runs two rosterd agents under
# callgrind (the seed, and one that joins) and twelve `roster agent`s on 127.0.0.1 ports 18000-18151 for about
# a minute: start, joins, API reads (/v1/self, /v1/members, /v1/health, /metrics), a member crashed and back, and
# a graceful leave. Run it on a build of the source and toolchain that will be shipped (any flags: they do not
# change the names); names that no longer exist are skipped by the linker, so a stale file costs memory, never
# correctness.
#
#   deploy/symbol-order.sh --mend target/x86_64-unknown-linux-gnu/release/rosterd [deploy/rosterd.symbol-order]
#
# Mends the file after a change to the code instead, in a second and without valgrind: a name the build no
# longer has (the compiler hashes a function's signature and its crate into its name, and numbers the local
# copies it makes) is replaced, in place, by every name of the build that is the same function under another
# hash or number. Prints what it kept, replaced and dropped; exits 1 if a name had no replacement. Run it on a
# build linked with the file, then build again with the mended file.
#
#   deploy/symbol-order.sh --extend target/x86_64-unknown-linux-gnu/release/rosterd [deploy/rosterd.symbol-order]
#
# Runs the agents as above and keeps the file's names that the build has, in their order, adding what the run
# found that the file lacks: the functions a change added, which no mending can name. After a change to the
# agent, mend, then extend, then build with the result.
set -euo pipefail
if [ "${1:-}" = --mend ]; then
  exec python3 - "$(realpath "$2")" "${3:-deploy/rosterd.symbol-order}" <<'PY'
import re, subprocess, sys
binary, path = sys.argv[1:]
symbols = [parts[2] for parts in (line.split() for line in
           subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout.splitlines())
           if len(parts) == 3 and parts[1] in "tTwWi"]
present = set(symbols)
def function(name):
    # The same function whatever its hash (`17h` and 16 hex digits, legacy mangling) or its copy's number.
    return re.sub(r"\.\d+$", "", re.sub(r"17h[0-9a-f]{16}E", "E", name))
same = {}
for name in symbols:
    same.setdefault(function(name), []).append(name)
order, seen, replaced, dropped = [], set(), 0, []
for name in open(path).read().split():
    if name in present:
        found = [name]
    else:
        found = sorted(same.get(function(name), []))
        replaced += bool(found)
        if not found:
            dropped.append(name)
    for f in found:
        if f not in seen:
            seen.add(f)
            order.append(f)
open(path, "w").write("\n".join(order) + "\n")
print(f"{path}: {len(order)} functions; {replaced} missing names replaced, {len(dropped)} dropped")
for name in dropped:
    print(f"  dropped: {name}")
sys.exit(1 if dropped else 0)
PY
fi
EXTEND=0
if [ "${1:-}" = --extend ]; then
  EXTEND=1
  shift
fi
BIN=$(realpath "$1")
OUT=${2:-deploy/rosterd.symbol-order}
ROSTER=$(dirname "$BIN")/roster
DIR=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do { kill -9 "$p" && wait "$p"; } 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT
member() {
  local i=$1
  "$ROSTER" agent --name "p$i" --bind "127.0.0.1:$((18000 + i))" --http "127.0.0.1:$((18100 + i))" \
    --data-dir "$DIR/p$i" \
    --log-level warn --join 127.0.0.1:18050 >"$DIR/p$i.log" 2>&1 &
  pids[$i]=$!
  sleep 0.3
}
# Two agents under callgrind: the seed the others join through, and one that joins.
profiled() {
  local name=$1 port=$2
  shift 2
  mkdir -p "$DIR/$name" # as a service manager or a container volume provides it
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$DIR/$name.callgrind" "$BIN" --name "$name" \
    --bind "127.0.0.1:180$port" --http "127.0.0.1:181$port" --data-dir "$DIR/$name" --log-level info "$@" \
    >"$DIR/$name.log" 2>&1 &
}
profiled seed 50
seed=$!
pids[20]=$seed
sleep 10
for i in $(seq 0 11); do member "$i"; done
profiled joiner 51 --join 127.0.0.1:18000
joiner=$!
pids[21]=$joiner
sleep 25
for port in 50 51; do
  for path in /v1/self /v1/members /metrics /v1/health /v1/self /v1/members /metrics; do
    curl -sf "http://127.0.0.1:181$port$path" >/dev/null
  done
  "$ROSTER" members --http "127.0.0.1:181$port" >/dev/null
done
{ kill -9 "${pids[4]}" && wait "${pids[4]}"; } 2>/dev/null || true
sleep 20
member 4
sleep 15
for port in 50 51; do curl -sf "http://127.0.0.1:181$port/metrics" >/dev/null; done
kill -TERM "$joiner" "$seed"
wait "$joiner" "$seed"
unset 'pids[20]' 'pids[21]'
python3 - "$BIN" "$OUT" "$EXTEND" "$DIR/seed.callgrind" "$DIR/joiner.callgrind" <<'PY'
import re, subprocess, sys
binary, out, extend, *profiles = sys.argv[1:]
# The binary's function symbols (with the C library's resolvers, `i`): the linker orders by these names.
symbols, ifuncs = set(), set()
for line in subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[1] in "tTwWi":
        symbols.add(parts[2])
        if parts[1] == "i":
            ifuncs.add(parts[2])
# callgrind names each function once, on its first fn= or cfn= line; the fn= lines are the functions that ran.
ran = []
for profile in profiles:
    names, idents = {}, []
    for line in open(profile, errors="replace"):
        m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        kind, ident, name = m.groups()
        if name:
            names[ident] = name
        if kind == "fn":
            idents.append(ident)
    ran.extend(names.get(ident, "") for ident in idents)
order, seen = [], set()
def add(name):
    if name in symbols and name not in seen:
        seen.add(name)
        order.append(name)
# Before main, unseen by callgrind: the entry point, and every resolver of the C library's CPU-specific
# functions, which a static binary runs at start to fill its relocations.
add("_start")
for name in sorted(s for s in symbols if s in ifuncs):
    add(name)
# Extending: the file's names first, in their order, then what this run found that the file lacks.
if extend == "1":
    for name in open(out).read().split():
        add(name)
for name in ran:
    add(name)
# The C library picks each string function's variant by the CPU, and valgrind's CPU is not the one the agent
# will run on: every variant (about 100 KiB) is kept with the functions that ran.
for name in sorted(symbols):
    if re.match(r"^__[a-z0-9]+_(sse2|ssse3|sse4|avx|evex)", name):
        add(name)
open(out, "w").write("\n".join(order) + "\n")
print(f"{out}: {len(order)} functions")
PY
