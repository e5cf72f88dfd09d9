#!/bin/sh
# A/B of one family's float or quantized GEMM in one binary:
#   bench/ab/kernel_ab.sh REV FAMILY f32|f16|q8|q4|scores-f32|scores-f16 M K N [ROUNDS]
# A is the family as of git revision REV, B as in the working tree. Each
# side's arch/ files of the family are compiled with the working tree's
# flags for it, every symbol they define is renamed (A_..., B_...), and both
# are linked into bench/ab/kernel_ab.c, which times them alternately on the
# same buffers. Two separately built benchmarks place their code and buffers
# differently, which alone moved identical machine code by up to 15 % here;
# in one binary only the code differs. Run it pinned on a quiet core:
#   taskset -c 1 bench/ab/kernel_ab.sh 2971b71 avx2 f16 16 128 512
# FAMILY neon is cross-compiled and run once under qemu-aarch64 (an emulator
# times nothing): it prints the instructions each side executed
# (bench/ab/qemu_count.py). dotprod and i8mm use neon's float GEMM.
set -eu
[ $# -ge 6 ] || { echo "usage: $0 REV FAMILY f32|f16|q8|q4|scores-f32|scores-f16 M K N [ROUNDS]" >&2; exit 2; }
rev=$1 fam=$2
shift 2
root=$(git rev-parse --show-toplevel)
case $fam in
avx2|avx512) dir=x86 cc=${CC:-gcc} static="" bin="" ;;
neon) dir=arm cc=${AARCH64_CC:-aarch64-linux-gnu-gcc} static=-static bin=aarch64-linux-gnu- ;;
*) echo "$0: FAMILY must be avx2, avx512 or neon" >&2; exit 2 ;;
esac
# q8 / q4 are timed on x86 only: NEON's quantized GEMMs do their work in
# static helpers, which qemu_count.py cannot tell apart between A and B
# (it counts the named function's own instructions: 14 for a whole call)
if [ $dir != x86 ] && { [ "$1" = q8 ] || [ "$1" = q4 ]; }; then
    echo "$0: q8 / q4 compare x86 families only (FAMILY avx2 or avx512)" >&2
    exit 2
fi
flags=$(make -s -C "$root" --no-print-directory --eval 'ab-print-%: ; @echo $($*)' "ab-print-FLAGS_$fam")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/A" "$tmp/B"
git -C "$root" archive "$rev" arch | tar -x -C "$tmp/A"
cp -R "$root/arch" "$tmp/B/"
for side in A B; do
    objs=""
    for src in "$tmp/$side/arch/$dir"/*_"$fam".c; do
        o="$tmp/$side/$(basename "$src" .c).o"
        $cc -std=c11 -D_GNU_SOURCE -O2 -ffp-contract=off $flags -I"$tmp/$side/arch" -I"$tmp/$side/arch/$dir" \
            -c "$src" -o "$o"
        objs="$objs $o"
    done
    # shellcheck disable=SC2086
    ${bin}nm --defined-only -g $objs | awk -v p="${side}_" 'NF == 3 { print $3, p $3 }' | sort -u > "$tmp/$side.syms"
    for o in $objs; do ${bin}objcopy --redefine-syms="$tmp/$side.syms" "$o"; done
    # shellcheck disable=SC2086
    ${bin}ar rcs "$tmp/$side.a" $objs
done
# scores-f16 / scores-f32: A's GEMM against B's wsum_rows over W transposed
# (attention scores with the keys in the lanes); M K N = query rows,
# head_dim, keys
case $1 in
scores-f16|scores-f32) t=${1#scores-} a="A_qrm_${fam}_gemm_$t" b="B_qrm_${fam}_wsum_rows_$t" def=-DSCORES ;;
q8|q4) t=$1 a="A_qrm_${fam}_gemm_f32" b="B_qrm_${fam}_gemm_f32" def="-DFN_QA=A_qrm_${fam}_gemm_$1 -DFN_QB=B_qrm_${fam}_gemm_$1 -I$root/arch" ;;
*) t=$1 a="A_qrm_${fam}_gemm_$1" b="B_qrm_${fam}_gemm_$1" def= ;;
esac
shift
set -- "$t" "$@"
# shellcheck disable=SC2086
$cc -std=c11 -O2 $static $def -DFN_A="$a" -DFN_B="$b" "$root/bench/ab/kernel_ab.c" "$tmp/A.a" "$tmp/B.a" -lm \
    -o "$tmp/kernel_ab"
echo "A = $fam at $(git -C "$root" rev-parse --short "$rev"), B = $fam in the working tree"
if [ $dir = x86 ]; then
    "$tmp/kernel_ab" "$@"
else
    ${QEMU_AARCH64:-qemu-aarch64 -cpu max} -d in_asm,exec,nochain -D "$tmp/log" "$tmp/kernel_ab" "$1" "$2" "$3" "$4" 0
    python3 "$root/bench/ab/qemu_count.py" "$tmp/log" "$tmp/kernel_ab" "$a" "$b"
fi
