/*
 * Constants and macros shared by the test guests' assembly and C code.
 */
#pragma once

/* Entry kinds passed to runtime_start(). */
#define ENTRY_PVH	1	/* Xen PVH: 32-bit, paging off, ebx = hvm_start_info */
#define ENTRY_LINUX64	2	/* Linux 64-bit boot protocol: rsi = boot_params */

/* Our own GDT (head.S); 0x10/0x18 are the Linux boot protocol's selectors. */
#define SEL_CODE32	0x08
#define SEL_CODE64	0x10
#define SEL_DATA	0x18
#define GDT_LIMIT	(4 * 8 - 1)	/* null, code32, code64, data */

/* smp: the real-mode AP trampoline and the APs' stacks, in free low RAM. */
#define AP_TRAMPOLINE	0x10000		/* SIPI vector 0x10 */
#define AP_STACK_TOP	0x90000		/* stacks grow down from here ... */
#define AP_STACK_SIZE	0x600
#define AP_MAX		254		/* ... to 0x30400: every AP of --cpus 255 */

#ifdef __ASSEMBLER__
/*
 * From 32-bit protected mode (flat segments, paging off) into long mode with
 * head.S's identity map, landing at the 64-bit label target. Keeps ebx, esi,
 * edi, ebp, esp.
 */
.macro ENTER_LONG_MODE target
	movl	%cr4, %eax
	orl	$0x20, %eax			/* PAE */
	movl	%eax, %cr4
	movl	$pml4, %eax
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx		/* IA32_EFER */
	rdmsr
	orl	$0x100, %eax			/* LME */
	wrmsr
	movl	%cr0, %eax
	orl	$0x80000001, %eax		/* PG | PE */
	movl	%eax, %cr0
	ljmp	$SEL_CODE64, $\target
.endm

.macro LOAD_DATA_SEGMENTS
	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
.endm
#endif
