/* The guest's runtime: port 0xE9 output, the guard-page allocator, the
 * exception report, power-off, and the few libc symbols compiled code calls
 * (memcpy and friends for struct copies, sqrtf for rmsnorm). Built with
 * -ffreestanding -fno-tree-loop-distribute-patterns so that GCC does not turn
 * memcpy's own loop into a call to memcpy. */
#include <stdint.h>

#include "rt.h"

static inline void outb(uint16_t port, uint8_t v) {
    __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port));
}

void rt_putc(char c) { outb(0xE9, (uint8_t)c); }
void rt_puts(const char *s) {
    while (*s) rt_putc(*s++);
}

void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
float sqrtf(float x);

void *memcpy(void *d, const void *s, size_t n) {
    uint8_t *dp = d;
    const uint8_t *sp = s;
    while (n--) *dp++ = *sp++;
    return d;
}
void *memmove(void *d, const void *s, size_t n) {
    uint8_t *dp = d;
    const uint8_t *sp = s;
    if (dp < sp)
        while (n--) *dp++ = *sp++;
    else
        for (dp += n, sp += n; n--;) *--dp = *--sp;
    return d;
}
void *memset(void *d, int c, size_t n) {
    uint8_t *dp = d;
    while (n--) *dp++ = (uint8_t)c;
    return d;
}
int memcmp(const void *a, const void *b, size_t n) {
    const uint8_t *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x - *y;
    return 0;
}
float sqrtf(float x) {
    float r;
    __asm__("sqrtss %1, %0" : "=x"(r) : "x"(x));
    return r;
}

static void puthex(uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; i--) rt_putc("0123456789abcdef"[(v >> (4 * i)) & 15]);
}

/* Bochs' shutdown port: the emulator exits at once. */
static void power_off(void) {
    for (const char *s = "Shutdown"; *s; s++)
        __asm__ volatile("outb %0, %1" ::"a"((uint8_t)*s), "d"((uint16_t)0x8900));
    for (;;) __asm__ volatile("cli; hlt");
}

const char *rt_case_name = "(none)";

/* Called by boot.S' exception stubs: frame[0] is the vector, then what the
 * CPU pushed (error code if any, RIP, CS, RFLAGS, RSP, SS). The host checker
 * stops at the line "EXCEPTION" and shows it. */
void rt_exception(const uint64_t *frame);
void rt_exception(const uint64_t *frame) {
    uint64_t cr2;
    __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
    rt_puts("\nEXCEPTION vector ");
    puthex(frame[0], 2);
    rt_puts(" (#UD=06 #GP=0d #PF=0e #XM=13) cr2 ");
    puthex(cr2, 16);
    rt_puts(" stack");
    for (int i = 1; i < 7; i++) rt_putc(' '), puthex(frame[i], 16);
    rt_puts(" in case [");
    rt_puts(rt_case_name);
    rt_puts("]\nGUEST ABORTED\n");
    power_off();
}

/* Guard pages. boot.S maps 0..1 GiB with 2 MiB pages (pd[i] maps i * 2 MiB);
 * the odd pages 33, 35, ..., 63 are unmapped here. Slot k's buffer lies
 * against page 33 + 2k: below it (mode 0) or above it (mode 1). Masked-off
 * lanes of AVX-512 masked loads and stores do not fault, as on hardware. */
extern uint64_t pd[];
static void guard_pages_unmap(void) {
    for (int k = 0; k < RT_GUARD_SLOTS; k++) pd[33 + 2 * k] = 0;
    __asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" ::: "rax", "memory");
}

#define PAGE_2M ((uintptr_t)2 << 20)

void *rt_alloc_guarded(size_t n, int k, int mode) {
    if (k >= RT_GUARD_SLOTS || n > PAGE_2M) {
        rt_puts("\nFATAL: guard slot ");
        puthex((uint64_t)k, 2);
        rt_puts(" or size too large in case [");
        rt_puts(rt_case_name);
        rt_puts("]\nGUEST ABORTED\n");
        power_off();
    }
    uintptr_t guard = (uintptr_t)(33 + 2 * k) * PAGE_2M;
    uint8_t *p = (uint8_t *)(mode == 0 ? guard - n : guard + PAGE_2M);
    memset(p, 0, n);
    return p;
}

/* Entered from boot.S in long mode with SSE/AVX/AVX-512 state enabled. */
void rt_main(void);
void rt_main(void) {
    uint32_t a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
    rt_puts("\nguest up; cpuid(7).ebx=");
    puthex(b, 8);
    rt_puts(" ecx=");
    puthex(c, 8);
    rt_puts("\n");
    guard_pages_unmap();
    driver_main();
    rt_puts("\nGUEST DONE\n");
    power_off();
}
