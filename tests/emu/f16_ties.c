/* See f16_ties.h. */
#include <string.h>

#include "f16.h"
#include "f16_ties.h"
#include "harness.h"

#ifdef HOST
#include <math.h>
#include <stdio.h>
#endif

/* Bit patterns, so that no compiler rounds them on the way: exact ties that
 * the two rules round apart (1 + 2^-11: 3c00 to even, 3c01 away; 2^-25
 * between 0 and the smallest subnormal; both signs), ties they agree on
 * (the even neighbour is also the larger), and non-ties next to ties. */
static const uint32_t probe_bits[16] = {
    0x3f801000u, /* 1 + 2^-11: tie */
    0xbf801000u, /* -(1 + 2^-11): tie */
    0x33000000u, /* 2^-25: tie between 0 and 2^-24 */
    0xb3000000u, /* -2^-25 */
    0xbe6b5000u, /* -0x1.d6ap-3: tie (bochs gave b35b) */
    0x3bc5d000u, /* 0x1.8bap-8: tie */
    0x3f803000u, /* 1 + 3 * 2^-11: tie, the even neighbour is the larger */
    0x33c00000u, /* 1.5 * 2^-24: tie, even is the larger */
    0x477ff000u, /* 65520: tie between 65504 and overflow: inf both ways */
    0x3f800800u, /* 1 + 2^-12: below a tie */
    0x3f801001u, /* just above 1 + 2^-11 */
    0x3f800fffu, /* just below 1 + 2^-11 */
    0x33000001u, /* just above 2^-25 */
    0x3f800000u, /* 1 */
    0x00000000u,
    0x80000000u,
};

#ifndef HOST
void vcvtps2ph_probe(uint16_t dst[16], const float src[16]); /* vcvtps2ph_probe.S */
#endif

#ifdef HOST
enum { PROBE_NOT_RUN, PROBE_TO_EVEN, PROBE_TIES_AWAY, PROBE_NEITHER };
static int probe_result = PROBE_NOT_RUN;
static uint16_t probe_got[16];
static long forgiven;

/* x to half, ties away from zero; any other rounding as round to even. */
static uint16_t f16_ties_away(float x) {
    uint16_t even = qrm_f32_to_f16(x), sign = even & 0x8000, mag = even & 0x7fff;
    double ax = fabs((double)x);
    if (isnan(x) || ax >= 65536.0 || (mag != 0x7c00 && ax == (double)qrm_f16_to_f32(mag)))
        return even;
    /* the neighbour on x's other side; past 65504 the next step would be 65536 */
    double r = mag == 0x7c00 ? 65536.0 : (double)qrm_f16_to_f32(mag);
    uint16_t other = ax > r ? (uint16_t)(mag + 1) : (uint16_t)(mag - 1);
    double o = other == 0x7c00 ? 65536.0 : (double)qrm_f16_to_f32(other);
    if (fabs(ax - r) != fabs(o - ax)) return even; /* not a tie */
    return (uint16_t)(sign | (mag > other ? mag : other));
}
#endif

void f16_tie_probe(void) {
    float in[16];
    memcpy(in, probe_bits, sizeof in);
    case_begin();
    uint16_t *out = case_alloc(sizeof(uint16_t) * 16);
    input_hash(in, sizeof in);
    case_name("VCVTPS2PH tie probe");
#ifndef HOST
    vcvtps2ph_probe(out, in);
#else
    for (int i = 0; i < 16; i++) out[i] = qrm_f32_to_f16(in[i]); /* control run: no probe */
#endif
    record_own_check(out, sizeof(uint16_t) * 16);
#ifdef HOST
    if (replaying()) {
        int to_even = 1, away = 1;
        for (int i = 0; i < 16; i++) {
            to_even &= out[i] == qrm_f32_to_f16(in[i]);
            away &= out[i] == f16_ties_away(in[i]);
        }
        memcpy(probe_got, out, sizeof probe_got);
        probe_result = to_even ? PROBE_TO_EVEN : away ? PROBE_TIES_AWAY : PROBE_NEITHER;
    }
#endif
    case_end();
}

#ifdef HOST
int f16_tie_forgiven(float x, uint16_t got) {
    if (probe_result != PROBE_TIES_AWAY || got == qrm_f32_to_f16(x) || got != f16_ties_away(x))
        return 0;
    forgiven++;
    return 1;
}

void f16_tie_report(void) {
    switch (probe_result) {
    case PROBE_NOT_RUN:
        printf("VCVTPS2PH probe: not run (host control run), f32_to_f16 checked bit for bit\n");
        break;
    case PROBE_TO_EVEN:
        printf("VCVTPS2PH probe: the CPU rounds ties to even (1+2^-11 -> %04x), "
               "f32_to_f16 checked bit for bit\n",
               probe_got[0]);
        break;
    case PROBE_TIES_AWAY:
        printf("VCVTPS2PH probe: the emulator rounds exact ties away from zero "
               "(1+2^-11 -> %04x, hardware 3c00), "
               "so f32_to_f16 forgave %ld such ties and nothing else\n",
               probe_got[0], forgiven);
        break;
    default:
        printf("VCVTPS2PH probe: WARNING: the instruction rounds neither to even nor ties away "
               "(1+2^-11 -> %04x, 2^-25 -> %04x), f32_to_f16 checked bit for bit\n",
               probe_got[0], probe_got[2]);
    }
}
#endif
