/*
 * The guest-physical memory map bootvm gives an x86 guest. docs/MACHINE.md
 * describes the same map for guest authors; keep the two in step.
 */
#pragma once

/* Low memory: boot structures bootvm writes before the first instruction. */
#define LAYOUT_GDT		0x500ULL	/* boot GDT, 6 entries */
#define LAYOUT_PVH_INFO		0x6000ULL	/* hvm_start_info, memmap, module list */
#define LAYOUT_ZERO_PAGE	0x7000ULL	/* struct boot_params */
#define LAYOUT_BOOT_STACK	0x8ff0ULL	/* initial rsp/esp; Linux brings its own */
#define LAYOUT_PML4		0x9000ULL	/* identity map of the first 4 GiB, 2 MiB pages */
#define LAYOUT_PDPT		0xa000ULL
#define LAYOUT_PD		0xb000ULL	/* four page directories: 0xb000-0xefff */
#define LAYOUT_CMDLINE		0x20000ULL	/* kernel command line */
#define LAYOUT_CMDLINE_MAX	0x10000ULL
#define LAYOUT_EBDA		0x9fc00ULL	/* E820: usable RAM ends here below 1 MiB */
#define LAYOUT_LOW_RESERVED_END	0x100000ULL	/* 0x9fc00-0xfffff reserved (ACPI lives here) */
#define LAYOUT_MPTABLE		0x9fc00ULL	/* MP floating pointer + table (for acpi=off), up to ACPI */
#define LAYOUT_ACPI		0xe0000ULL	/* RSDP then the other tables, up to 1 MiB */
#define LAYOUT_ACPI_END		0x100000ULL
#define LAYOUT_KERNEL		0x100000ULL	/* default kernel load address (1 MiB) */

/* Above RAM below 4 GiB: the 32-bit MMIO hole. RAM beyond it moves to 4 GiB. */
#define LAYOUT_MMIO_HOLE_START	0xc0000000ULL	/* 3 GiB */
#define LAYOUT_MMIO_HOLE_END	0x100000000ULL
#define LAYOUT_PCI_MMIO32	0xc0000000ULL	/* 32-bit PCI BAR window, 512 MiB */
#define LAYOUT_PCI_MMIO32_SIZE	0x20000000ULL
#define LAYOUT_PCI_ECAM		0xe0000000ULL	/* PCIe ECAM for bus 0 only: 1 MiB */
#define LAYOUT_PCI_ECAM_SIZE	0x100000ULL
#define LAYOUT_PCI_MMIO64_SIZE	0x1000000000ULL	/* 64-bit window: 64 GiB above RAM, 1 GiB aligned */
#define LAYOUT_KVM_IDENTITY_MAP	0xfeffc000ULL	/* one page KVM needs on Intel (real mode) */
#define LAYOUT_KVM_TSS		0xfeffd000ULL	/* three pages KVM needs on Intel */
#define LAYOUT_IOAPIC		0xfec00000ULL
#define LAYOUT_LAPIC		0xfee00000ULL

/* Port I/O. */
#define PORT_I8042_DATA		0x60
#define PORT_DEBUG		0x80		/* guest markers on the boot timeline (POST code port) */
#define PORT_I8042_CMD		0x64
#define PORT_COM1		0x3f8
#define PORT_PVPANIC		0x505		/* QEMU's pvpanic ISA port */
#define PORT_ACPI_PM1A_EVT	0x600		/* PM1a event block, 4 bytes */
#define PORT_ACPI_PM1A_CNT	0x604		/* PM1a control block, 2 bytes */
#define PORT_ACPI_RESET		0x608		/* FADT RESET_REG, 1 byte */
#define PORT_PCI_CONFIG_ADDR	0xcf8		/* PCI configuration mechanism #1 */
#define PORT_PCI_CONFIG_DATA	0xcfc
#define PORT_PCI_IO_START	0x1000		/* PCI I/O window (no device uses I/O BARs yet) */
#define PORT_PCI_IO_END		0xffff

/* ISA interrupt lines (GSIs through the IOAPIC). */
#define IRQ_COM1		4
#define IRQ_ACPI_SCI		9
/* PCI INTx: slot S pin P (0 = INTA) -> GSI 16 + (S + P) % 4, level, active low (_PRT). */
#define IRQ_PCI_BASE		16
#define IRQ_PCI_COUNT		4
