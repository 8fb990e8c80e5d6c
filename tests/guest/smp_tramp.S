/*
 * smp: the application processors' way in. smp.c copies the real-mode part
 * (ap_trampoline .. ap_trampoline_end) to AP_TRAMPOLINE and sends SIPI with
 * vector AP_TRAMPOLINE >> 12. It loads head.S's GDT and far-jumps to
 * ap_start32 in the image, which enters long mode with head.S's page tables,
 * takes the next free stack and calls ap_main().
 */
#include "head.h"

	.text
	.code16
	.globl	ap_trampoline
ap_trampoline:
	cli
	cld
	movw	%cs, %ax
	movw	%ax, %ds
	lgdtl	(ap_gdt_desc - ap_trampoline)
	movl	%cr0, %eax
	orl	$1, %eax
	movl	%eax, %cr0
	ljmpl	$SEL_CODE32, $ap_start32
	.balign	8
ap_gdt_desc:
	.word	GDT_LIMIT
	.long	gdt
	.globl	ap_trampoline_end
ap_trampoline_end:

	.code32
ap_start32:
	LOAD_DATA_SEGMENTS
	ENTER_LONG_MODE ap_start64

	.code64
ap_start64:
	LOAD_DATA_SEGMENTS
	movl	$1, %eax
	lock xaddl %eax, ap_next(%rip)
	cmpl	$AP_MAX, %eax
	jae	2f
	movl	$AP_STACK_TOP, %esp
	imull	$AP_STACK_SIZE, %eax
	subq	%rax, %rsp
	call	ap_main
2:	cli
	hlt
	jmp	2b

	.data
	.balign	4
ap_next:
	.long	0

	.section .note.GNU-stack, "", @progbits
