#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), one after another.
#
#   tests/fuzz/run.sh [SECONDS]            all targets
#   FUZZ_TARGETS="chunked edits" tests/fuzz/run.sh 600
#
# cargo-fuzz is installed when missing. It passes nightly-only flags to
# rustc (-Zsanitizer, sancov passes); this toolchain is stable, and
# RUSTC_BOOTSTRAP=1 lets it accept them. AddressSanitizer works that way;
# FUZZ_SANITIZER=none runs without it (faster, finds panics and invariant
# failures only).
#
# Everything it writes stays under target/fuzz/: the instrumented build
# (build/), the corpora, which grow from run to run (corpus/<target>/), and
# any crashing input (artifacts/<target>/). Reproduce a crash with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir tests/fuzz \
#     --target-dir target/fuzz/build <target> target/fuzz/artifacts/<target>/crash-…
# and keep it as a unit test next to the code it broke.
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
fuzz_dir="$root/tests/fuzz"
work="$root/target/fuzz"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

# `cargo fuzz SUBCOMMAND` with the options every call shares, before the
# rest of the arguments (those after `--` go to libFuzzer).
fuzz() {
    subcommand="$1"
    shift
    cargo fuzz "$subcommand" --fuzz-dir "$fuzz_dir" --target-dir "$work/build" --sanitizer "$sanitizer" \
        --codegen-units 16 "$@"
}

fuzz build
for target in ${FUZZ_TARGETS:-$(cargo fuzz list --fuzz-dir "$fuzz_dir")}; do
    mkdir -p "$work/corpus/$target" "$work/artifacts/$target"
    echo "== $target: ${seconds}s"
    # Inputs that once failed are kept in seeds/<target>/ and run first.
    seeds=()
    [ -d "$fuzz_dir/seeds/$target" ] && seeds=("$fuzz_dir/seeds/$target")
    fuzz run "$target" "$work/corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -artifact_prefix="$work/artifacts/$target/" -print_final_stats=1
done
