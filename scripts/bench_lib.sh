# Shared by the data-parallel benchmarks (sourced, from the repository root): the binary, a
# scratch folder removed on exit, one libtorch thread per process, and a stage's rate.
BIN=${MMLATENT:-target/release/mmlatent}
[ -x "$BIN" ] || { echo "no $BIN: run cargo build --release first" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=1

# steps/s of STAGE in RUN: (last step - first step) / (last wall - first wall) over logged rows.
rate() {
  awk -F, -v stage="$2" '$1 == stage && !seen[$2]++ { if (!n++) { s0 = $2; t0 = $6 } s1 = $2; t1 = $6 }
    END { if (t1 > t0) printf "%.3f", (s1 - s0) / (t1 - t0); else print "nan" }' "$1/metrics.csv"
}
