/* Guest entry. isolinux's mboot.c32 loads the flat binary at 1 MiB (the
 * multiboot "a.out kludge": the header gives the load addresses, no ELF
 * needed) and jumps here in 32-bit protected mode. We identity-map the
 * first GiB with 2 MiB pages, enter long mode, enable SSE, AVX and AVX-512
 * state (CR4.OSFXSR|OSXMMEXCPT|OSXSAVE, XCR0 = x87|SSE|AVX|opmask|ZMM_Hi256|
 * Hi16_ZMM = 0xE7; without it every AVX-512 instruction raises #UD), install
 * an IDT whose 32 exception gates report to rt_exception(), and call
 * rt_main(). Interrupts stay off throughout. */
.set MB_MAGIC, 0x1BADB002
.set MB_FLAGS, (1 << 0) | (1 << 1) | (1 << 16)   /* aligned modules, mem info, a.out kludge */

.section .text.boot, "ax"
.code32
.globl _start
_start:
mb_header:
    .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
    .long mb_header, _load_start, _load_end, _bss_end, start32
start32:
    cli
    cld
    /* .bss holds the page tables and the stack: zero it first */
    mov $_bss_start, %edi
    mov $_bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb
    mov $stack_top, %esp
    /* PML4[0] -> PDPT[0] -> PD: 512 x 2 MiB = 0..1 GiB, identity */
    mov $pdpt, %eax
    or $3, %eax
    mov %eax, pml4
    mov $pd, %eax
    or $3, %eax
    mov %eax, pdpt
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax              /* present, writable, 2 MiB page */
    mov %eax, pd(,%ecx,8)
    inc %ecx
    cmp $512, %ecx
    jne 1b
    mov $pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $(1 << 5), %eax          /* PAE */
    mov %eax, %cr4
    mov $0xC0000080, %ecx       /* EFER.LME */
    rdmsr
    or $(1 << 8), %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax        /* PG | PE */
    mov %eax, %cr0
    lgdt gdt_ptr
    ljmp $0x08, $start64

.code64
start64:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $stack_top, %rsp
    mov %cr0, %rax
    and $~(1 << 2), %rax        /* EM off: no x87 emulation */
    or $(1 << 1), %rax          /* MP on */
    and $~(1 << 3), %rax        /* TS off: no lazy-FPU trap */
    mov %rax, %cr0
    mov %cr4, %rax
    or $((1 << 9) | (1 << 10) | (1 << 18)), %rax   /* OSFXSR OSXMMEXCPT OSXSAVE */
    mov %rax, %cr4
    xor %ecx, %ecx              /* XCR0 */
    mov $0xe7, %eax
    xor %edx, %edx
    xsetbv
    /* IDT: one 16-byte interrupt gate per exception vector 0..31 */
    lea idt(%rip), %rdi
    lea exc_stubs(%rip), %rsi
    xor %ecx, %ecx
2:  mov %rsi, %rax
    mov %ax, (%rdi)             /* offset 15:0 */
    movw $0x08, 2(%rdi)         /* code selector */
    movw $0x8E00, 4(%rdi)       /* present, DPL 0, 64-bit interrupt gate */
    shr $16, %rax
    mov %ax, 6(%rdi)            /* offset 31:16 */
    shr $16, %rax
    mov %eax, 8(%rdi)           /* offset 63:32 */
    movl $0, 12(%rdi)
    add $16, %rdi
    add $16, %rsi               /* the stubs are 16 bytes apart */
    inc %ecx
    cmp $32, %ecx
    jne 2b
    lidt idt_ptr(%rip)
    call rt_main
3:  cli
    hlt
    jmp 3b

/* Stub i pushes i and joins exc_common, which passes the frame to C. */
    .p2align 4
exc_stubs:
    .set vector, 0
    .rept 32
    .p2align 4
    push $vector
    jmp exc_common
    .set vector, vector + 1
    .endr
exc_common:
    mov %rsp, %rdi
    and $~15, %rsp
    call rt_exception
4:  cli
    hlt
    jmp 4b

.section .rodata
    .p2align 3
gdt:
    .quad 0
    .quad 0x00209A0000000000    /* 0x08: 64-bit code */
    .quad 0x0000920000000000    /* 0x10: data */
gdt_end:
gdt_ptr:
    .word gdt_end - gdt - 1
    .long gdt, 0
idt_ptr:
    .word 32 * 16 - 1
    .quad idt

.section .bss
    .p2align 12
pml4: .skip 4096
pdpt: .skip 4096
.globl pd
pd:   .skip 4096
idt:  .skip 32 * 16
    .p2align 6
stack: .skip 1 << 20
stack_top:

.section .note.GNU-stack, "", @progbits
