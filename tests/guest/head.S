/*
 * Entry points of every test guest, linked at 1 MiB (link.ld):
 *   0x100000  startup_32: Xen PVH entry (the ELF note below points here)
 *   0x100200  startup_64: Linux 64-bit boot protocol entry (bzImage)
 * Both switch to our own GDT and page tables (initialized data: nothing is
 * built at run time) and a stack, and call runtime_start(kind, info).
 */
#include "head.h"

	.section .head.text, "ax"

	.code32
	.globl	startup_32
startup_32:
	cli
	cld
	lgdt	gdt_desc
	LOAD_DATA_SEGMENTS
	ENTER_LONG_MODE pvh_64

	.code64
pvh_64:
	movl	%ebx, %r12d			/* hvm_start_info */
	movl	$ENTRY_PVH, %r13d
	jmp	common_64

	.org	0x200
	.globl	startup_64
startup_64:
	cli
	cld
	movq	%rsi, %r12			/* boot_params */
	movl	$ENTRY_LINUX64, %r13d
	lgdt	gdt_desc(%rip)
	movq	$pml4, %rax
	movq	%rax, %cr3
	movq	$stack_top, %rsp
	pushq	$SEL_CODE64
	leaq	common_64(%rip), %rax
	pushq	%rax
	lretq

common_64:
	LOAD_DATA_SEGMENTS
	movq	$stack_top, %rsp
	/* A bzImage loader copies the file only: clear .bss ourselves. */
	movq	$_bss_start, %rdi
	movq	$_bss_end, %rcx
	subq	%rdi, %rcx
	shrq	$3, %rcx
	xorl	%eax, %eax
	rep stosq
	movl	%r13d, %edi
	movq	%r12, %rsi
	call	runtime_start
1:	cli
	hlt
	jmp	1b

	.section .rodata
	.balign	8
	.globl	gdt
gdt:
	.quad	0
	.quad	0x00cf9a000000ffff		/* 0x08: 32-bit code, flat */
	.quad	0x00af9a000000ffff		/* 0x10: 64-bit code */
	.quad	0x00cf92000000ffff		/* 0x18: data, flat */
	.globl	gdt_end
gdt_end:
	.balign	8
	.globl	gdt_desc
gdt_desc:					/* lgdt reads 6 bytes in 32-bit mode, 10 in 64-bit */
	.word	GDT_LIMIT
	.quad	gdt
	.if	gdt_end - gdt - 1 - GDT_LIMIT
	.error	"GDT_LIMIT is wrong"
	.endif

/*
 * Identity map of the first 4 GiB with 2 MiB pages; the top GiB (the MMIO
 * hole) uncached.
 */
	.section .data.pgtable, "aw"
	.balign	4096
	.globl	pml4
pml4:
	.quad	pdpt + 0x3
	.fill	511, 8, 0
pdpt:
	.quad	pd + 0x0000 + 0x3
	.quad	pd + 0x1000 + 0x3
	.quad	pd + 0x2000 + 0x3
	.quad	pd + 0x3000 + 0x3
	.fill	508, 8, 0
pd:
	.set	i, 0
	.rept	2048
	.quad	(i << 21) | 0x83 | ((i >= 1536) & 0x18)
	.set	i, i + 1
	.endr

	.section .stack, "aw", @nobits
	.balign	16
	.skip	16384
stack_top:

/* XEN_ELFNOTE_PHYS32_ENTRY (18): the 32-bit PVH entry, as Linux writes it (8 bytes). */
	.section .note.Xen, "a", @note
	.balign	4
	.long	4
	.long	8
	.long	18
	.asciz	"Xen"
	.balign	4
	.quad	startup_32
	.balign	4

	.section .note.GNU-stack, "", @progbits
