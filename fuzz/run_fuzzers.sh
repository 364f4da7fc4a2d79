#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/CMakeLists.txt: clang, ASan + UBSan) in build-fuzz/
# and runs each for a fixed time on one core. Every run starts from the kept corpus
# fuzz/corpus/<parser>/ (the seeds from fuzz/make_seeds.py, seed_*, plus small inputs
# earlier runs found) and the working corpus build-fuzz/corpus/<parser>/ (everything
# found so far, not kept in the repository); new inputs go to the working corpus.
# Afterwards the kept corpus is rebuilt: the seeds, then (libFuzzer -merge=1) the
# inputs that add coverage to them, smallest first, up to 24 KiB per parser.
# Findings (crash-*, leak-*, timeout-*, oom-*) go to build-fuzz/findings/<parser>/, the
# log of each run to build-fuzz/logs/<parser>.log. One line per parser is printed:
# executions, kept corpus, findings. Exit status 1 when anything was found.
#
# Usage: fuzz/run_fuzzers.sh [SECONDS_PER_PARSER (default 120)] [PARSER...]
# Replay one input: build-fuzz/sae_fuzz_<parser> FILE (SAE_FUZZ_VERBOSE=1 prints why an
# input was rejected).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-120}"
shift || true
parsers=("$@")
if [ ${#parsers[@]} -eq 0 ]; then
    parsers=(npy safetensors saelens run_config checkpoint edf eeglab bpe gpt2_hf gpt2_mingpt lexicon activation_manifest)
fi
kept_bytes=24576

cmake -S fuzz -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ > /dev/null
targets=()
for parser in "${parsers[@]}"; do targets+=(--target "sae_fuzz_${parser}"); done
cmake --build build-fuzz -j "${SAE_FUZZ_BUILD_JOBS:-1}" "${targets[@]}"

# The files of the current input live in memory when /dev/shm is there.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
# -timeout: one input running 10 s is a hang; -malloc_limit_mb: one allocation over
# 512 MB is a finding; -max_len: bundles up to 64 KiB.
limits=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -max_len=65536)

status=0
for parser in "${parsers[@]}"; do
    fuzzer="build-fuzz/sae_fuzz_${parser}"
    kept="fuzz/corpus/${parser}"
    work="build-fuzz/corpus/${parser}"
    findings="build-fuzz/findings/${parser}"
    log="build-fuzz/logs/${parser}.log"
    mkdir -p "${work}" "${findings}" build-fuzz/logs
    if ! "${fuzzer}" "${work}" "${kept}" "${limits[@]}" -max_total_time="${seconds}" -use_value_profile=1 \
            -print_final_stats=1 -artifact_prefix="${findings}/" > "${log}" 2>&1; then
        status=1
    fi

    # The kept corpus: seeds first, then what adds coverage to them, smallest first.
    largest_seed="$(find "${kept}" -name 'seed_*' -printf '%s\n' | sort -n | tail -1)"
    candidates="build-fuzz/candidates/${parser}"
    merged="build-fuzz/merged/${parser}"
    rm -rf "${candidates}" "${merged}"
    mkdir -p "${candidates}" "${merged}"
    cp "${kept}"/seed_* "${merged}/"
    find "${work}" "${kept}" -type f ! -name 'seed_*' -size -"$((2 * largest_seed + 4096))"c -exec cp {} "${candidates}/" \;
    "${fuzzer}" -merge=1 "${limits[@]}" "${merged}" "${candidates}" >> "${log}" 2>&1 || status=1
    find "${kept}" -type f ! -name 'seed_*' -delete
    total=0
    while read -r size file; do
        total=$((total + size))
        [ "${total}" -le "${kept_bytes}" ] || break
        cp "${file}" "${kept}/"
    done < <(find "${merged}" -type f ! -name 'seed_*' -printf '%s %p\n' | sort -n)

    execs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "${log}" | grep -Eo '[0-9]+$' | tail -1)"
    found="$(find "${findings}" -type f | wc -l)"
    [ "${found}" -eq 0 ] || status=1
    echo "${parser}: ${execs:-?} executions in ${seconds} s; kept corpus $(ls "${kept}" | wc -l) files," \
         "$(cat "${kept}"/* | wc -c) bytes; working corpus $(ls "${work}" | wc -l) files; findings: ${found} (${log})"
done
exit "${status}"
