#!/bin/sh
# Run a libFuzzer driver for a bounded number of inputs over its seed corpus.
#   run_fuzz.sh FUZZER ARTIFACT_DIR [libFuzzer flags...] SEED_DIR
# The seed directory is read only: libFuzzer writes new inputs into the first corpus
# directory it is given, so that is a fresh temporary one, removed afterwards. Crashes and
# leaks are kept in ARTIFACT_DIR (in the build tree).
set -eu
fuzzer=$1
artifacts=$2
shift 2
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/tq_fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
# libFuzzer reports a crash with exit status 77 by default, which meson reads as "skipped".
"$fuzzer" "$work" -artifact_prefix="$artifacts/" -error_exitcode=1 -timeout=10 \
	-timeout_exitcode=1 -print_final_stats=1 "$@"
