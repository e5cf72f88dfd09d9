/* How the CPU under test rounds exact ties in VCVTPS2PH, learned from the
 * instruction itself before any kernel runs.
 *
 * Real hardware rounds them to nearest even, as imm 0 asks. Bochs 2.7 rounds
 * them away from zero in every form of the instruction, so under bochs
 * qrm_avx512_f32_to_f16 (correct) comes out different on exact ties. The host
 * forgives exactly that, and only when the probe shows the emulator's own
 * instruction doing it. */
#ifndef QRM_EMU_F16_TIES_H
#define QRM_EMU_F16_TIES_H

#include <stdint.h>

/* Guest: runs the raw instruction on known ties and records the result.
 * Host: reads that record and classifies it. Call once, first. */
void f16_tie_probe(void);

#ifdef HOST
/* 1 (and counted) if got is x rounded to half with ties away from zero where
 * that differs from round to nearest even, and the probe showed the
 * instruction itself rounding this way; 0 otherwise (a failure). */
int f16_tie_forgiven(float x, uint16_t got);
/* One line: what the probe showed and how many ties were forgiven. */
void f16_tie_report(void);
#endif

#endif
