/* Every kernel family, in one list that dispatch, `qrm info`, the tests and
 * the benchmarks expand. Within an architecture the order is the order of
 * preference (best first); scalar, the reference, closes every list.
 *
 * A family `f` provides, in its folder, `const qrm_kernels *qrm_kernels_f(void)`
 * (QRM_DEFINE_FAMILY in arch/kernels.h), and arch/dispatch.c a support test
 * `family_supports_f(const qrm_cpu_features *)`. Adding one:
 * docs/adding-a-kernel-family.md. */
#ifndef QRM_FAMILIES_H
#define QRM_FAMILIES_H

#define QRM_FAMILIES_X86(X) X(avx512) X(avx2)
#define QRM_FAMILIES_ARM(X) X(i8mm) X(dotprod) X(neon)

/* Every family qrm knows, whatever this build's architecture. */
#define QRM_FAMILIES_ALL(X) QRM_FAMILIES_X86(X) QRM_FAMILIES_ARM(X) X(scalar)

/* The SIMD families compiled into this build, and all of its families. */
#if defined(__x86_64__)
#define QRM_FAMILIES_SIMD(X) QRM_FAMILIES_X86(X)
#elif defined(__aarch64__)
#define QRM_FAMILIES_SIMD(X) QRM_FAMILIES_ARM(X)
#else
#define QRM_FAMILIES_SIMD(X)
#endif
#define QRM_FAMILIES_BUILT(X) QRM_FAMILIES_SIMD(X) X(scalar)

#endif
