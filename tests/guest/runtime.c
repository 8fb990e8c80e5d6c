/*
 * The test guests' runtime (see runtime.h). Ring 0 runs in KVM's instruction
 * emulator on the build machines, so everything here is short and bounded.
 */
#include <asm/bootparam.h>

#include "runtime.h"

struct boot boot;

/* ---- CPU ---- */

noreturn void halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

extern uint64_t pml4[512];

#define PT_POOL 6
static uint64_t pt_pool[PT_POOL][512] __attribute__((aligned(4096)));
static unsigned int pt_used;

static uint64_t *pt_next(uint64_t *entry)
{
	if (!(*entry & 1)) {
		if (pt_used == PT_POOL)
			return NULL;
		*entry = (uint64_t)pt_pool[pt_used++] | 0x3;
	}
	return (uint64_t *)(*entry & 0x000ffffffffff000ULL);
}

bool map_mmio(uint64_t addr, uint64_t size)
{
	if (!size || addr + size < addr || addr + size > (1ULL << 48))
		return false;
	for (uint64_t gib = addr >> 30; gib <= (addr + size - 1) >> 30; gib++) {
		uint64_t *pdpt = pt_next(&pml4[(gib >> 9) & 511]);
		if (!pdpt)
			return false;
		if (pdpt[gib & 511] & 1)
			continue;			/* mapped already (the first 4 GiB, or before) */
		uint64_t *pd = pt_next(&pdpt[gib & 511]);
		if (!pd)
			return false;
		for (uint64_t i = 0; i < 512; i++)
			pd[i] = (gib << 30) | (i << 21) | 0x83 | 0x18;	/* 2 MiB, PCD | PWT */
	}
	uint64_t cr3;
	__asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
	return true;
}

/* ---- strings ---- */

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;

	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

/* The word at p (up to a space or the end) and its length. */
static size_t word_len(const char *p)
{
	size_t n = 0;

	while (p[n] && p[n] != ' ')
		n++;
	return n;
}

const char *cmdline_get(const char *key, size_t *len)
{
	size_t klen = strlen(key);

	for (const char *p = boot.cmdline; *p;) {
		size_t n = word_len(p);
		if (n > klen && p[klen] == '=' && !memcmp(p, key, klen)) {
			*len = n - klen - 1;
			return p + klen + 1;
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	return NULL;
}

bool cmdline_has(const char *word)
{
	size_t wlen = strlen(word);

	for (const char *p = boot.cmdline; *p;) {
		size_t n = word_len(p);
		if (n >= wlen && !memcmp(p, word, wlen) && (n == wlen || p[wlen] == '='))
			return true;
		p += n;
		while (*p == ' ')
			p++;
	}
	return false;
}

bool cmdline_is(const char *key, const char *value)
{
	size_t len;
	const char *v = cmdline_get(key, &len);

	return v && len == strlen(value) && !memcmp(v, value, len);
}

/* ---- console ---- */

static struct spinlock print_lock;

void spin_lock(struct spinlock *l)
{
	for (;;) {
		uint32_t v = 1;
		__asm__ volatile("xchgl %0, %1" : "+r"(v), "+m"(l->locked) : : "memory");
		if (!v)
			return;
		while (l->locked)
			cpu_relax();
	}
}

void spin_unlock(struct spinlock *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

void serial_init(void)
{
	outb(COM1 + UART_IER, 0);
	outb(COM1 + UART_LCR, 0x80);		/* DLAB: 115200 baud */
	outb(COM1 + 0, 1);
	outb(COM1 + 1, 0);
	outb(COM1 + UART_LCR, 0x03);		/* 8N1 */
	/* FCR untouched: a FIFO mode change empties the RX FIFO, losing typed-ahead keys. */
	outb(COM1 + UART_MCR, 0x03);		/* DTR, RTS */
}

void serial_putc(char c)
{
	/* Bounded: a UART that never drains must not hang the guest. */
	for (int i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & UART_LSR_THRE); i++)
		cpu_relax();
	outb(COM1 + UART_THR, (uint8_t)c);
}

static void put_locked(char c)
{
	if (c == '\n')
		serial_putc('\r');
	serial_putc(c);
}

void print_bytes(const char *s, size_t n)
{
	spin_lock(&print_lock);
	for (size_t i = 0; i < n; i++)
		serial_putc(s[i]);
	spin_unlock(&print_lock);
}

static void put_number(uint64_t v, unsigned int base, bool neg, int width, char pad, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char buf[24];
	int n = 0;

	do {
		buf[n++] = digits[v % base];
		v /= base;
	} while (v);
	if (neg)
		buf[n++] = '-';
	for (int i = n; i < width; i++)
		put_locked(pad);
	while (n)
		put_locked(buf[--n]);
}

void vprintf(const char *fmt, va_list ap)
{
	spin_lock(&print_lock);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put_locked(*fmt);
			continue;
		}
		char pad = ' ';
		int width = 0, lng = 0;
		fmt++;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + *fmt++ - '0';
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			put_number(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, pad, false);
			break;
		}
		case 'u':
			put_number(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int), 10, false, width, pad, false);
			break;
		case 'x':
		case 'X':
			put_number(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int), 16, false, width, pad,
				   *fmt == 'X');
			break;
		case 'p':
			put_locked('0');
			put_locked('x');
			put_number((uint64_t)va_arg(ap, void *), 16, false, width, pad, false);
			break;
		case 'c':
			put_locked((char)va_arg(ap, int));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			int n = 0;
			for (; *s; s++, n++)
				put_locked(*s);
			for (; n < width; n++)
				put_locked(' ');
			break;
		}
		case '%':
			put_locked('%');
			break;
		case 0:
			fmt--;
			break;
		default:
			put_locked('%');
			put_locked(*fmt);
		}
	}
	spin_unlock(&print_lock);
}

void printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

void print(const char *s)
{
	printf("%s", s);
}

/* ---- boot information ---- */

#define PVH_MAGIC 0x336ec578

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};

static void boot_add_mem(uint64_t addr, uint64_t size, uint32_t type)
{
	if (boot.nr_mem < BOOT_MEM_MAX)
		boot.mem[boot.nr_mem++] = (struct boot_mem){ addr, size, type };
}

static void boot_parse_pvh(const struct hvm_start_info *si)
{
	if (si->magic != PVH_MAGIC)
		printf("pvh: bad start_info magic 0x%x\n", si->magic);
	boot.cmdline = si->cmdline_paddr ? (const char *)si->cmdline_paddr : "";
	boot.rsdp = si->rsdp_paddr;
	if (si->nr_modules && si->modlist_paddr) {
		const struct hvm_modlist_entry *mod = (const void *)si->modlist_paddr;
		boot.initrd_addr = mod->paddr;
		boot.initrd_size = mod->size;
	}
	if (si->version >= 1 && si->memmap_paddr) {
		const struct hvm_memmap_table_entry *e = (const void *)si->memmap_paddr;
		for (uint32_t i = 0; i < si->memmap_entries; i++)
			boot_add_mem(e[i].addr, e[i].size, e[i].type);
	}
}

static void boot_parse_linux(const struct boot_params *bp)
{
	uint64_t cmd = bp->hdr.cmd_line_ptr | (uint64_t)bp->ext_cmd_line_ptr << 32;

	boot.cmdline = cmd ? (const char *)cmd : "";
	boot.rsdp = bp->acpi_rsdp_addr;
	boot.initrd_addr = bp->hdr.ramdisk_image | (uint64_t)bp->ext_ramdisk_image << 32;
	boot.initrd_size = bp->hdr.ramdisk_size | (uint64_t)bp->ext_ramdisk_size << 32;
	for (unsigned int i = 0; i < bp->e820_entries && i < E820_MAX_ENTRIES_ZEROPAGE; i++)
		boot_add_mem(bp->e820_table[i].addr, bp->e820_table[i].size, bp->e820_table[i].type);
}

void runtime_start(int kind, uint64_t info);

void runtime_start(int kind, uint64_t info)
{
	serial_init();
	boot.entry = kind;
	boot.info = info;
	boot.cmdline = "";
	printf("entry=%s\n", kind == ENTRY_PVH ? "pvh" : "linux64");
	if (kind == ENTRY_PVH)
		boot_parse_pvh((const struct hvm_start_info *)info);
	else
		boot_parse_linux((const struct boot_params *)info);
	guest_main();
	acpi_poweroff();
	halt_forever();
}

/* ---- ACPI ---- */

uint8_t acpi_sum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	while (n--)
		s += *b++;
	return s;
}

uint64_t acpi_scan_rsdp(void)
{
	for (uint64_t a = 0xe0000; a < 0x100000; a += 16)
		if (*(const volatile uint64_t *)a == 0x2052545020445352ULL)	/* "RSD PTR " */
			if (!acpi_sum((const void *)a, 20))
				return a;
	return 0;
}

uint64_t acpi_rsdp(void)
{
	return boot.rsdp ? boot.rsdp : acpi_scan_rsdp();
}

const struct acpi_header *acpi_find(const char sig[4])
{
	const struct acpi_rsdp *rsdp = (const void *)acpi_rsdp();

	if (!rsdp)
		return NULL;
	if (rsdp->revision >= 2 && rsdp->xsdt_address) {
		const struct acpi_header *x = (const void *)rsdp->xsdt_address;
		const uint64_t *e = (const void *)(x + 1);
		for (size_t i = 0; i < (x->length - sizeof(*x)) / 8; i++) {
			const struct acpi_header *t = (const void *)e[i];
			if (t && !memcmp(t->signature, sig, 4))
				return t;
		}
	} else if (rsdp->rsdt_address) {
		const struct acpi_header *r = (const void *)(uint64_t)rsdp->rsdt_address;
		const uint32_t *e = (const void *)(r + 1);
		for (size_t i = 0; i < (r->length - sizeof(*r)) / 4; i++) {
			const struct acpi_header *t = (const void *)(uint64_t)e[i];
			if (t && !memcmp(t->signature, sig, 4))
				return t;
		}
	}
	return NULL;
}

uint32_t fadt_u32(const struct acpi_header *fadt, unsigned int off)
{
	uint32_t v = 0;

	if (off + 4 <= fadt->length)
		memcpy(&v, (const uint8_t *)fadt + off, 4);
	return v;
}

uint64_t fadt_u64(const struct acpi_header *fadt, unsigned int off)
{
	uint64_t v = 0;

	if (off + 8 <= fadt->length)
		memcpy(&v, (const uint8_t *)fadt + off, 8);
	return v;
}

const struct acpi_gas *fadt_gas(const struct acpi_header *fadt, unsigned int off)
{
	const struct acpi_gas *g = (const void *)((const uint8_t *)fadt + off);

	return off + sizeof(*g) <= fadt->length && g->address ? g : NULL;
}

const struct acpi_header *acpi_dsdt(const struct acpi_header *fadt)
{
	uint64_t a = fadt_u64(fadt, FADT_X_DSDT);

	if (!a)
		a = fadt_u32(fadt, FADT_DSDT);
	return (const void *)a;
}

int acpi_s5_slp_typ(void)
{
	const struct acpi_header *fadt = acpi_find("FACP");
	const struct acpi_header *dsdt = fadt ? acpi_dsdt(fadt) : NULL;

	if (!dsdt)
		return -1;
	const uint8_t *p = (const uint8_t *)dsdt;
	for (uint32_t i = sizeof(*dsdt); i + 8 < dsdt->length; i++) {
		if (p[i] != '_' || memcmp(p + i, "_S5_", 4))
			continue;
		uint32_t j = i + 4;
		if (p[j++] != 0x12)			/* PackageOp */
			continue;
		j += 1 + (p[j] >> 6);			/* PkgLength */
		j++;					/* NumElements */
		switch (p[j]) {
		case 0x00: return 0;			/* ZeroOp */
		case 0x01: return 1;			/* OneOp */
		case 0x0a: return p[j + 1];		/* BytePrefix */
		case 0x0b: return p[j + 1];		/* WordPrefix */
		}
	}
	return -1;
}

void gas_write(const struct acpi_gas *g, uint64_t value, unsigned int default_bits)
{
	unsigned int bits = g->bit_width ? g->bit_width : default_bits;

	if (g->space_id == 1) {				/* system I/O */
		uint16_t port = (uint16_t)g->address;
		if (bits == 8)
			outb(port, (uint8_t)value);
		else if (bits == 16)
			outw(port, (uint16_t)value);
		else
			outl(port, (uint32_t)value);
	} else if (g->space_id == 0) {			/* system memory */
		if (bits == 8)
			*(volatile uint8_t *)g->address = (uint8_t)value;
		else if (bits == 16)
			*(volatile uint16_t *)g->address = (uint16_t)value;
		else if (bits == 32)
			*(volatile uint32_t *)g->address = (uint32_t)value;
		else
			*(volatile uint64_t *)g->address = value;
	} else {
		printf("acpi: address space %u not supported\n", g->space_id);
	}
}

static void linger(void)
{
	for (int i = 0; i < 200000; i++)
		cpu_relax();
}

void acpi_poweroff(void)
{
	const struct acpi_header *fadt = acpi_find("FACP");
	int typ = acpi_s5_slp_typ();

	if (!fadt) {
		print("poweroff: no FADT\n");
		return;
	}
	if (typ < 0) {
		print("poweroff: no \\_S5_ in the DSDT\n");
		return;
	}
	uint32_t pm1a = fadt_u32(fadt, FADT_PM1A_CNT_BLK);
	const struct acpi_gas *g;
	if (pm1a)
		outw((uint16_t)pm1a, (uint16_t)((typ & 7) << 10 | 1 << 13));
	else if ((g = fadt_gas(fadt, FADT_X_PM1A_CNT_BLK)))
		gas_write(g, (typ & 7) << 10 | 1 << 13, 16);
	else if ((g = fadt_gas(fadt, FADT_SLEEP_CONTROL_REG)))	/* HW-reduced ACPI */
		gas_write(g, (typ & 7) << 2 | 1 << 5, 8);
	else {
		print("poweroff: no PM1a control block or sleep control register\n");
		return;
	}
	linger();
	print("poweroff: still running\n");
}

void acpi_reset(void)
{
	const struct acpi_header *fadt = acpi_find("FACP");
	const struct acpi_gas *g = fadt ? fadt_gas(fadt, FADT_RESET_REG) : NULL;

	if (!g || !(fadt_u32(fadt, FADT_FLAGS) & (1u << 10))) {
		print("reset: no ACPI reset register\n");
		return;
	}
	gas_write(g, ((const uint8_t *)fadt)[FADT_RESET_VALUE], 8);
	linger();
	print("reset: still running\n");
}

/* ---- x2APIC ---- */

bool x2apic_enable(void)
{
	uint32_t r[4];

	cpuid(1, 0, r);
	if (!(r[2] & (1u << 21)))
		return false;
	uint64_t base = rdmsr(MSR_APIC_BASE);
	if ((base & 0xc00) != 0xc00)
		wrmsr(MSR_APIC_BASE, base | 0xc00);	/* EN | EXTD */
	return true;
}

/* ---- the IOAPIC ---- */

void ioapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(IOAPIC_BASE, reg);
	mmio_write32(IOAPIC_BASE + 0x10, v);
}

uint32_t ioapic_read(uint32_t reg)
{
	mmio_write32(IOAPIC_BASE, reg);
	return mmio_read32(IOAPIC_BASE + 0x10);
}

__attribute__((interrupt)) static void spurious_isr(struct interrupt_frame *f)
{
	(void)f;
}

bool ioapic_mode_init(const char *who)
{
	idt_init();
	idt_set_gate(0xff, spurious_isr);
	outb(0x21, 0xff);			/* mask the 8259s: the IOAPIC delivers */
	outb(0xa1, 0xff);
	if (!x2apic_enable()) {
		printf("%s: no x2APIC\n", who);
		return false;
	}
	wrmsr(X2APIC_TPR, 0);
	wrmsr(X2APIC_LVT_LINT0, 1u << 16);	/* masked */
	wrmsr(X2APIC_SVR, 0x1ff);		/* software-enable, spurious vector 0xff */
	return true;
}

/* ---- interrupts ---- */

struct idt_gate {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, zero;
} packed;

static struct idt_gate idt[256] __attribute__((aligned(16)));

static void set_gate(unsigned int vector, uint64_t handler)
{
	idt[vector] = (struct idt_gate){
		.off_lo = (uint16_t)handler,
		.sel = SEL_CODE64,
		.type = 0x8e,				/* present, DPL 0, 64-bit interrupt gate */
		.off_mid = (uint16_t)(handler >> 16),
		.off_hi = (uint32_t)(handler >> 32),
	};
}

void idt_set_gate(unsigned int vector, void (*handler)(struct interrupt_frame *))
{
	set_gate(vector, (uint64_t)handler);
}

static noreturn void exception(unsigned int vector, struct interrupt_frame *f, uint64_t err)
{
	uint64_t cr2;

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	printf("exception %u at rip=0x%lx err=0x%lx cr2=0x%lx\n", vector, f->rip, err, cr2);
	acpi_reset();
	halt_forever();
}

#define EXC(n) \
	__attribute__((interrupt)) static void exc_##n(struct interrupt_frame *f) { exception(n, f, 0); }
#define EXC_ERR(n) \
	__attribute__((interrupt)) static void exc_##n(struct interrupt_frame *f, uint64_t err) { exception(n, f, err); }

EXC(0) EXC(1) EXC(2) EXC(3) EXC(4) EXC(5) EXC(6) EXC(7) EXC_ERR(8) EXC(9)
EXC_ERR(10) EXC_ERR(11) EXC_ERR(12) EXC_ERR(13) EXC_ERR(14) EXC(15) EXC(16) EXC_ERR(17)
EXC(18) EXC(19) EXC(20) EXC_ERR(21) EXC(22) EXC(23) EXC(24) EXC(25) EXC(26) EXC(27)
EXC(28) EXC_ERR(29) EXC_ERR(30) EXC(31)

#define G(n) (uint64_t)exc_##n
static const uint64_t exc_handlers[32] = {
	G(0), G(1), G(2), G(3), G(4), G(5), G(6), G(7), G(8), G(9), G(10), G(11), G(12), G(13),
	G(14), G(15), G(16), G(17), G(18), G(19), G(20), G(21), G(22), G(23), G(24), G(25),
	G(26), G(27), G(28), G(29), G(30), G(31),
};

void idt_init(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} packed desc = { sizeof(idt) - 1, (uint64_t)idt };

	for (unsigned int v = 0; v < 32; v++)
		set_gate(v, exc_handlers[v]);
	__asm__ volatile("lidt %0" : : "m"(desc));
}
