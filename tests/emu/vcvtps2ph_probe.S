/* void vcvtps2ph_probe(uint16_t dst[16], const float src[16])
 *
 * The emulator's own VCVTPS2PH, in the very form qrm_avx512_f32_to_f16
 * compiles to (EVEX zmm source, imm 0 = round to nearest even, masked store),
 * with no compiler between the test and the instruction: driver.c feeds it
 * exact ties to learn how the CPU (or emulator) under test rounds them. */
.text
.globl vcvtps2ph_probe
vcvtps2ph_probe:
    vmovups (%rsi), %zmm0
    mov $0xffff, %eax
    kmovw %eax, %k1
    vcvtps2ph $0, %zmm0, (%rdi){%k1}
    vzeroupper
    ret

.section .note.GNU-stack, "", @progbits
