/*
 * The test guests' freestanding runtime: port and MSR access, a polled
 * 16550 console with a tiny printf, boot information from either entry
 * protocol, ACPI table lookup, poweroff/reset, x2APIC and an IDT.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "head.h"

#define noreturn __attribute__((noreturn))
#define packed __attribute__((packed))

/* ---- what the boot protocol told us (runtime.c fills it before guest_main) ---- */

#define BOOT_MEM_MAX 64

struct boot_mem {
	uint64_t addr, size;
	uint32_t type;
};

struct boot {
	int entry;			/* ENTRY_PVH or ENTRY_LINUX64 */
	uint64_t info;			/* hvm_start_info or boot_params address */
	const char *cmdline;		/* never NULL */
	uint64_t rsdp;			/* from the boot protocol; 0 if it gave none */
	unsigned int nr_mem;
	struct boot_mem mem[BOOT_MEM_MAX];
	uint64_t initrd_addr, initrd_size;	/* 0, 0 without one */
};

extern struct boot boot;

/* Each guest defines this; returning from it powers off. */
void guest_main(void);

/* ---- CPU ---- */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

static inline uint8_t mmio_read8(uint64_t addr) { return *(volatile uint8_t *)addr; }
static inline uint16_t mmio_read16(uint64_t addr) { return *(volatile uint16_t *)addr; }
static inline uint32_t mmio_read32(uint64_t addr) { return *(volatile uint32_t *)addr; }
static inline void mmio_write8(uint64_t addr, uint8_t v) { *(volatile uint8_t *)addr = v; }
static inline void mmio_write16(uint64_t addr, uint16_t v) { *(volatile uint16_t *)addr = v; }
static inline void mmio_write32(uint64_t addr, uint32_t v) { *(volatile uint32_t *)addr = v; }

/* A full barrier the emulator runs (no mfence): orders stores before later loads. */
static inline void mb(void) { __asm__ volatile("lock; addl $0, (%%rsp)" ::: "memory", "cc"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

/*
 * Identity-map [addr, addr + size) uncached with 2 MiB pages, whole GiBs at a
 * time, beyond head.S's first 4 GiB (a 64-bit PCI BAR). False if the small
 * pool of page-table pages ran out or addr is beyond 256 TiB.
 */
bool map_mmio(uint64_t addr, uint64_t size);

noreturn void halt_forever(void);

/* ---- strings ---- */

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/*
 * The value of the first "key=value" word on the command line, its length in
 * *len; NULL if absent. cmdline_has() finds a bare word or a key=... word.
 */
const char *cmdline_get(const char *key, size_t *len);
bool cmdline_has(const char *word);
bool cmdline_is(const char *key, const char *value);

/* ---- console (COM1, polled output; printf takes a lock, so any CPU may print) ---- */

void serial_init(void);
void serial_putc(char c);
void print(const char *s);
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vprintf(const char *fmt, va_list ap);
void print_bytes(const char *s, size_t n);	/* raw, under the lock */

struct spinlock { volatile uint32_t locked; };
void spin_lock(struct spinlock *l);
void spin_unlock(struct spinlock *l);

#define COM1		0x3f8
#define UART_RBR	0
#define UART_THR	0
#define UART_IER	1
#define UART_FCR	2
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define UART_LSR_DR	0x01
#define UART_LSR_THRE	0x20

/* ---- ACPI ---- */

struct acpi_gas {
	uint8_t space_id, bit_width, bit_offset, access_size;
	uint64_t address;
} packed;

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision, checksum;
	char oem_id[6], oem_table_id[8];
	uint32_t oem_revision, creator_id, creator_revision;
} packed;

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t ext_checksum, reserved[3];
} packed;

/* FADT field offsets (ACPI 6.x) */
#define FADT_FIRMWARE_CTRL	36
#define FADT_DSDT		40
#define FADT_PM1A_CNT_BLK	64
#define FADT_FLAGS		112
#define FADT_RESET_REG		116
#define FADT_RESET_VALUE	128
#define FADT_X_FIRMWARE_CTRL	132
#define FADT_X_DSDT		140
#define FADT_X_PM1A_CNT_BLK	172
#define FADT_SLEEP_CONTROL_REG	244

uint8_t acpi_sum(const void *p, size_t n);
uint64_t acpi_scan_rsdp(void);		/* search 0xe0000-0xfffff; 0 if absent */
uint64_t acpi_rsdp(void);		/* boot.rsdp, else the scan */
/* The table with this signature, by the XSDT (else the RSDT); NULL if absent. */
const struct acpi_header *acpi_find(const char sig[4]);
const struct acpi_header *acpi_dsdt(const struct acpi_header *fadt);
/* The first element of \_S5_ in the DSDT; -1 if not found. */
int acpi_s5_slp_typ(void);
uint32_t fadt_u32(const struct acpi_header *fadt, unsigned int off);
uint64_t fadt_u64(const struct acpi_header *fadt, unsigned int off);
const struct acpi_gas *fadt_gas(const struct acpi_header *fadt, unsigned int off);
void gas_write(const struct acpi_gas *g, uint64_t value, unsigned int default_bits);

/* These return only if the machine ignored the request (after printing why). */
void acpi_poweroff(void);
void acpi_reset(void);

/* ---- x2APIC ---- */

#define MSR_APIC_BASE	0x1b
#define X2APIC_ID	0x802
#define X2APIC_TPR	0x808
#define X2APIC_EOI	0x80b
#define X2APIC_SVR	0x80f
#define X2APIC_ICR	0x830
#define X2APIC_LVT_LINT0 0x835

bool x2apic_enable(void);		/* false if the CPU has no x2APIC */
static inline uint32_t x2apic_id(void) { return (uint32_t)rdmsr(X2APIC_ID); }
static inline void x2apic_eoi(void) { wrmsr(X2APIC_EOI, 0); }
static inline void x2apic_send_ipi(uint32_t dest, uint32_t low) { wrmsr(X2APIC_ICR, (uint64_t)dest << 32 | low); }

/* ---- interrupts ---- */

struct interrupt_frame {
	uint64_t rip, cs, rflags, rsp, ss;
};

/* An IDT whose exception vectors (0-31) report and reset the machine. */
void idt_init(void);
void idt_set_gate(unsigned int vector, void (*handler)(struct interrupt_frame *));

/* ---- the IOAPIC (at its default base; MMIO, not the x2APIC) ---- */

#define IOAPIC_BASE	0xfec00000ULL

void ioapic_write(uint32_t reg, uint32_t v);
uint32_t ioapic_read(uint32_t reg);
/*
 * Interrupts through the IOAPIC: the IDT (with a spurious-vector 0xff
 * handler), the 8259s masked, the BSP's x2APIC on with TPR 0, LINT0 masked
 * and spurious vector 0xff. False (printed as "WHO: no x2APIC") without one.
 */
bool ioapic_mode_init(const char *who);
