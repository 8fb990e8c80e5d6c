#include "arch/x86/acpi.h"

#include <string.h>

#include "util/aml.h"
#include "arch/x86/layout.h"
#include "devices/acpi_pm.h"
#include "util/log.h"
#include "vmm/memory.h"

/*
 * Table layouts from the ACPI 6.3 specification, chapter 5. Every
 * multi-byte field is little endian, as is the host.
 */

#define ACPI_OEM_ID		"BOOTVM"	/* exactly 6 characters */
#define ACPI_OEM_REVISION	1
#define ACPI_CREATOR_ID		"BTVM"
#define ACPI_CREATOR_REVISION	1

#define ACPI_MAX_CPUS		255	/* processor UID 0xff means "all" in the NMI entry */

struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS is 12 bytes");

#define ACPI_GAS_SYSTEM_IO	1
#define ACPI_GAS_ACCESS_BYTE	1
#define ACPI_GAS_ACCESS_WORD	2

struct acpi_rsdp {
	char signature[8];		/* "RSD PTR " */
	uint8_t checksum;		/* over the first 20 bytes (the ACPI 1.0 part) */
	char oem_id[6];
	uint8_t revision;		/* 2: ACPI 2.0 and later */
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t extended_checksum;	/* over all 36 bytes */
	uint8_t reserved[3];
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP is 36 bytes");

#define ACPI_RSDP_V1_LEN	20

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_header) == 36, "SDT header is 36 bytes");

#define ACPI_HEADER_CHECKSUM_OFF 9

/* Fixed ACPI Description Table, revision 6 (ACPI 6.0 and later). */
struct acpi_fadt {
	struct acpi_header header;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;		/* INT_MODEL in ACPI 1.0 */
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	uint64_t hypervisor_vendor_id;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 is 276 bytes");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT flags offset");
_Static_assert(offsetof(struct acpi_fadt, x_firmware_ctrl) == 132, "FADT X_FIRMWARE_CTRL offset");
_Static_assert(offsetof(struct acpi_fadt, x_pm1a_evt_blk) == 148, "FADT X_PM1a_EVT_BLK offset");
_Static_assert(offsetof(struct acpi_fadt, hypervisor_vendor_id) == 268, "FADT hypervisor id offset");

#define ACPI_FADT_REVISION	6
#define ACPI_FADT_MINOR		3	/* ACPI 6.3 */

/* FADT flags (ACPI 6.3 table 5-35). */
#define ACPI_FADT_F_WBINVD		(1U << 0)
#define ACPI_FADT_F_PROC_C1		(1U << 2)
#define ACPI_FADT_F_PWR_BUTTON		(1U << 4)	/* 1: no fixed-feature power button */
#define ACPI_FADT_F_SLP_BUTTON		(1U << 5)	/* 1: no fixed-feature sleep button */
#define ACPI_FADT_F_FIX_RTC		(1U << 6)	/* 1: no RTC wake status in PM1 */
#define ACPI_FADT_F_RESET_REG_SUP	(1U << 10)

/* IA-PC boot architecture flags (ACPI 6.3 table 5-36). */
#define ACPI_FADT_BOOT_LEGACY_DEVICES	(1U << 0)	/* ISA devices: COM1, i8042 */
#define ACPI_FADT_BOOT_VGA_NOT_PRESENT	(1U << 2)
#define ACPI_FADT_BOOT_CMOS_RTC_NOT_PRESENT (1U << 5)

/* C2/C3 latencies above 100 and 1000 us mean "not supported". */
#define ACPI_FADT_NO_C2_LATENCY	0x0fff
#define ACPI_FADT_NO_C3_LATENCY	0x0fff

#define ACPI_PM1_EVT_LEN	4
#define ACPI_PM1_CNT_LEN	2
#define ACPI_RESET_REG_LEN	1

struct acpi_facs {
	char signature[4];		/* "FACS" */
	uint32_t length;
	uint32_t hardware_signature;
	uint32_t firmware_waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_firmware_waking_vector;
	uint8_t version;
	uint8_t reserved0[3];
	uint32_t ospm_flags;
	uint8_t reserved1[24];
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS is 64 bytes");

#define ACPI_FACS_VERSION	2
#define ACPI_FACS_ALIGN		64

struct acpi_madt {
	struct acpi_header header;
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT header is 44 bytes");

#define ACPI_MADT_REVISION	5	/* ACPI 6.3 */
#define ACPI_MADT_PCAT_COMPAT	(1U << 0)

#define ACPI_MADT_TYPE_LAPIC		0
#define ACPI_MADT_TYPE_IOAPIC		1
#define ACPI_MADT_TYPE_ISO		2
#define ACPI_MADT_TYPE_LAPIC_NMI	4

struct acpi_madt_lapic {
	uint8_t type;
	uint8_t length;
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_lapic) == 8, "MADT local APIC entry is 8 bytes");

#define ACPI_MADT_LAPIC_ENABLED	(1U << 0)

struct acpi_madt_ioapic {
	uint8_t type;
	uint8_t length;
	uint8_t ioapic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_ioapic) == 12, "MADT IOAPIC entry is 12 bytes");

struct acpi_madt_iso {
	uint8_t type;
	uint8_t length;
	uint8_t bus;			/* 0: ISA */
	uint8_t source;			/* bus-relative IRQ */
	uint32_t gsi;
	uint16_t flags;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_iso) == 10, "MADT interrupt source override is 10 bytes");

/* MPS INTI flags: polarity in bits 0-1, trigger mode in bits 2-3. */
#define ACPI_MPS_CONFORMS		0x0000
#define ACPI_MPS_ACTIVE_HIGH		0x0001
#define ACPI_MPS_LEVEL			0x000c

struct acpi_madt_lapic_nmi {
	uint8_t type;
	uint8_t length;
	uint8_t processor_uid;		/* 0xff: all processors */
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_madt_lapic_nmi) == 6, "MADT local APIC NMI entry is 6 bytes");

#define ACPI_MADT_ALL_PROCESSORS	0xff
#define ACPI_PIT_IRQ			0
#define ACPI_PIT_GSI			2	/* the PIT is wired to IOAPIC pin 2 */
#define ACPI_IOAPIC_ID			0

#define ACPI_XSDT_MAX_ENTRIES	3	/* FADT, MADT, MCFG */

#define ACPI_DSDT_REVISION	2	/* 64-bit AML integers */
#define ACPI_MCFG_REVISION	1

/* MCFG: the header, 8 reserved bytes, then one allocation per ECAM range. */
struct acpi_mcfg {
	struct acpi_header h;
	uint64_t reserved;
	uint64_t base;
	uint16_t segment;
	uint8_t start_bus;
	uint8_t end_bus;
	uint32_t reserved2;
} __attribute__((packed));
_Static_assert(sizeof(struct acpi_mcfg) == 60, "MCFG with one allocation is 60 bytes");

static uint8_t acpi_checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)-sum;
}

static void acpi_header_init(struct acpi_header *h, const char *sig, const char *table_id,
			     size_t length, uint8_t revision)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->signature, sig, 4);
	h->length = (uint32_t)length;
	h->revision = revision;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, table_id, 8);
	h->oem_revision = ACPI_OEM_REVISION;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = ACPI_CREATOR_REVISION;
}

/* Set the checksum byte of the table at t so that its bytes sum to zero. */
static void acpi_table_seal(uint8_t *t)
{
	struct acpi_header h;

	memcpy(&h, t, sizeof(h));
	t[ACPI_HEADER_CHECKSUM_OFF] = 0;
	t[ACPI_HEADER_CHECKSUM_OFF] = acpi_checksum(t, h.length);
}

static struct acpi_gas acpi_gas_io(uint16_t port, unsigned int bytes, uint8_t access_size)
{
	return (struct acpi_gas){
		.space_id = ACPI_GAS_SYSTEM_IO,
		.bit_width = (uint8_t)(bytes * 8),
		.bit_offset = 0,
		.access_size = access_size,
		.address = port,
	};
}

/* The DSDT's AML: \_S5_, then the devices the board describes, under \_SB. */
static void acpi_dsdt_aml(struct aml *a, const struct acpi_config *cfg)
{
	size_t pkg, scope;

	/* SLP_TYPa, SLP_TYPb, then two reserved values. */
	aml_name(a, "\\_S5_");
	pkg = aml_package_begin(a, 4);
	aml_integer(a, ACPI_PM_S5_SLP_TYP);
	aml_integer(a, ACPI_PM_S5_SLP_TYP);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a, pkg);

	scope = aml_scope_begin(a, "\\_SB");
	if (cfg->dsdt_devices) {
		aml_bytes(a, cfg->dsdt_devices->buf, cfg->dsdt_devices->len);
		a->overflow |= cfg->dsdt_devices->overflow;
	}
	aml_end(a, scope);
}

/* Offsets of each table in the output buffer. */
struct acpi_layout {
	size_t rsdp, xsdt, fadt, facs, dsdt, madt, mcfg, end;
	size_t xsdt_len, dsdt_len, madt_len, mcfg_len;
};

/* Advance off so that base + off is a multiple of align (a power of two). */
static size_t acpi_align(uint64_t base, size_t off, uint64_t align)
{
	uint64_t addr = base + off;

	return off + (size_t)(((addr + align - 1) & ~(align - 1)) - addr);
}

static void acpi_plan(struct acpi_layout *l, uint64_t base, unsigned int nr_cpus,
		      size_t aml_len, bool mcfg)
{
	size_t off;

	l->mcfg = 0;
	l->mcfg_len = mcfg ? sizeof(struct acpi_mcfg) : 0;
	l->xsdt_len = sizeof(struct acpi_header) + (mcfg ? 3 : 2) * sizeof(uint64_t);
	l->dsdt_len = sizeof(struct acpi_header) + aml_len;
	l->madt_len = sizeof(struct acpi_madt) + nr_cpus * sizeof(struct acpi_madt_lapic) +
		      sizeof(struct acpi_madt_ioapic) + 2 * sizeof(struct acpi_madt_iso) +
		      sizeof(struct acpi_madt_lapic_nmi);

	/* The RSDP on a 16-byte boundary, where the BIOS-area scan looks. */
	off = acpi_align(base, 0, 16);
	l->rsdp = off;
	off = acpi_align(base, off + sizeof(struct acpi_rsdp), 16);
	l->xsdt = off;
	off = acpi_align(base, off + l->xsdt_len, 16);
	l->fadt = off;
	off = acpi_align(base, off + sizeof(struct acpi_fadt), ACPI_FACS_ALIGN);
	l->facs = off;
	off = acpi_align(base, off + sizeof(struct acpi_facs), 16);
	l->dsdt = off;
	off = acpi_align(base, off + l->dsdt_len, 16);
	l->madt = off;
	off += l->madt_len;
	if (mcfg) {
		off = acpi_align(base, off, 16);
		l->mcfg = off;
		off += l->mcfg_len;
	}
	l->end = off;
}

static void acpi_write_xsdt(uint8_t *buf, const struct acpi_layout *l, uint64_t base)
{
	struct acpi_header h;
	uint64_t entries[ACPI_XSDT_MAX_ENTRIES] = { base + l->fadt, base + l->madt, base + l->mcfg };
	uint8_t *t = buf + l->xsdt;

	acpi_header_init(&h, "XSDT", "BOOTVMXS", l->xsdt_len, 1);
	memcpy(t, &h, sizeof(h));
	memcpy(t + sizeof(h), entries, l->xsdt_len - sizeof(h));
	acpi_table_seal(t);
}

/* One ECAM allocation: segment 0, buses 0 to end_bus. */
static void acpi_write_mcfg(uint8_t *buf, const struct acpi_layout *l,
			    const struct acpi_config *cfg)
{
	struct acpi_mcfg m = { 0 };
	uint8_t *t = buf + l->mcfg;

	acpi_header_init(&m.h, "MCFG", "BOOTVMMC", sizeof(m), ACPI_MCFG_REVISION);
	m.base = cfg->ecam_base;
	m.segment = 0;
	m.start_bus = 0;
	m.end_bus = cfg->ecam_end_bus;
	memcpy(t, &m, sizeof(m));
	acpi_table_seal(t);
}

static void acpi_write_fadt(uint8_t *buf, const struct acpi_layout *l, uint64_t base)
{
	struct acpi_fadt f;
	uint64_t facs = base + l->facs, dsdt = base + l->dsdt;

	memset(&f, 0, sizeof(f));
	acpi_header_init(&f.header, "FACP", "BOOTVMFA", sizeof(f), ACPI_FADT_REVISION);
	f.minor_version = ACPI_FADT_MINOR;

	/* At most one of FIRMWARE_CTRL and X_FIRMWARE_CTRL may be non-zero. */
	if (facs <= UINT32_MAX)
		f.firmware_ctrl = (uint32_t)facs;
	else
		f.x_firmware_ctrl = facs;
	/* Both DSDT fields may be set if they agree; a mismatch is what OSes flag. */
	if (dsdt <= UINT32_MAX)
		f.dsdt = (uint32_t)dsdt;
	f.x_dsdt = dsdt;

	f.sci_int = IRQ_ACPI_SCI;
	f.smi_cmd = 0;			/* no SMI: the hardware is always in ACPI mode */

	f.pm1a_evt_blk = PORT_ACPI_PM1A_EVT;
	f.pm1_evt_len = ACPI_PM1_EVT_LEN;
	f.x_pm1a_evt_blk = acpi_gas_io(PORT_ACPI_PM1A_EVT, ACPI_PM1_EVT_LEN, ACPI_GAS_ACCESS_WORD);
	f.pm1a_cnt_blk = PORT_ACPI_PM1A_CNT;
	f.pm1_cnt_len = ACPI_PM1_CNT_LEN;
	f.x_pm1a_cnt_blk = acpi_gas_io(PORT_ACPI_PM1A_CNT, ACPI_PM1_CNT_LEN, ACPI_GAS_ACCESS_WORD);
	/* No PM timer, PM2 control or GPE blocks: their addresses and lengths stay 0. */

	f.p_lvl2_lat = ACPI_FADT_NO_C2_LATENCY;
	f.p_lvl3_lat = ACPI_FADT_NO_C3_LATENCY;
	f.century = 0;			/* no CMOS RTC */

	/*
	 * No 8042 flag: only the i8042's reset command is there, and with the
	 * flag Linux's i8042 driver probes the controller and waits 0.5 s for a
	 * reply that never comes. Resetting through port 0x64 works without it.
	 */
	f.iapc_boot_arch = ACPI_FADT_BOOT_LEGACY_DEVICES |
			   ACPI_FADT_BOOT_VGA_NOT_PRESENT | ACPI_FADT_BOOT_CMOS_RTC_NOT_PRESENT;
	/*
	 * PWR_BUTTON clear: the power button is the fixed-feature one in PM1
	 * (PWRBTN_STS/EN), so Linux's button driver needs no DSDT device.
	 */
	f.flags = ACPI_FADT_F_WBINVD | ACPI_FADT_F_PROC_C1 |
		  ACPI_FADT_F_SLP_BUTTON | ACPI_FADT_F_FIX_RTC | ACPI_FADT_F_RESET_REG_SUP;
	f.reset_reg = acpi_gas_io(PORT_ACPI_RESET, ACPI_RESET_REG_LEN, ACPI_GAS_ACCESS_BYTE);
	f.reset_value = ACPI_PM_RESET_VALUE;

	memcpy(&f.hypervisor_vendor_id, "BOOTVM\0\0", 8);

	memcpy(buf + l->fadt, &f, sizeof(f));
	acpi_table_seal(buf + l->fadt);
}

static void acpi_write_facs(uint8_t *buf, const struct acpi_layout *l)
{
	struct acpi_facs f;

	/* No S4BIOS, no waking vector (no S3), global lock free. No checksum. */
	memset(&f, 0, sizeof(f));
	memcpy(f.signature, "FACS", 4);
	f.length = sizeof(f);
	f.version = ACPI_FACS_VERSION;
	memcpy(buf + l->facs, &f, sizeof(f));
}

static void acpi_write_dsdt(uint8_t *buf, const struct acpi_layout *l, const struct aml *a)
{
	struct acpi_header h;
	uint8_t *t = buf + l->dsdt;

	acpi_header_init(&h, "DSDT", "BOOTVMDS", l->dsdt_len, ACPI_DSDT_REVISION);
	memcpy(t, &h, sizeof(h));
	memcpy(t + sizeof(h), a->buf, a->len);
	acpi_table_seal(t);
}

static void acpi_write_madt(uint8_t *buf, const struct acpi_layout *l, unsigned int nr_cpus)
{
	uint8_t *t = buf + l->madt, *p;
	struct acpi_madt m;
	struct acpi_madt_ioapic io = {
		.type = ACPI_MADT_TYPE_IOAPIC, .length = sizeof(io),
		.ioapic_id = ACPI_IOAPIC_ID, .address = (uint32_t)LAYOUT_IOAPIC, .gsi_base = 0,
	};
	struct acpi_madt_iso iso[2] = {
		{ .type = ACPI_MADT_TYPE_ISO, .length = sizeof(iso[0]), .bus = 0,
		  .source = ACPI_PIT_IRQ, .gsi = ACPI_PIT_GSI, .flags = ACPI_MPS_CONFORMS },
		{ .type = ACPI_MADT_TYPE_ISO, .length = sizeof(iso[1]), .bus = 0,
		  .source = IRQ_ACPI_SCI, .gsi = IRQ_ACPI_SCI,
		  .flags = ACPI_MPS_ACTIVE_HIGH | ACPI_MPS_LEVEL },
	};
	struct acpi_madt_lapic_nmi nmi = {
		.type = ACPI_MADT_TYPE_LAPIC_NMI, .length = sizeof(nmi),
		.processor_uid = ACPI_MADT_ALL_PROCESSORS, .flags = ACPI_MPS_CONFORMS, .lint = 1,
	};

	memset(&m, 0, sizeof(m));
	acpi_header_init(&m.header, "APIC", "BOOTVMAP", l->madt_len, ACPI_MADT_REVISION);
	m.lapic_address = (uint32_t)LAYOUT_LAPIC;
	m.flags = ACPI_MADT_PCAT_COMPAT;	/* the in-kernel 8259 pair is there */
	memcpy(t, &m, sizeof(m));
	p = t + sizeof(m);

	for (unsigned int i = 0; i < nr_cpus; i++) {
		struct acpi_madt_lapic lapic = {
			.type = ACPI_MADT_TYPE_LAPIC, .length = sizeof(lapic),
			.processor_uid = (uint8_t)i, .apic_id = (uint8_t)i,
			.flags = ACPI_MADT_LAPIC_ENABLED,
		};
		memcpy(p, &lapic, sizeof(lapic));
		p += sizeof(lapic);
	}
	memcpy(p, &io, sizeof(io));
	p += sizeof(io);
	memcpy(p, iso, sizeof(iso));
	p += sizeof(iso);
	memcpy(p, &nmi, sizeof(nmi));
	acpi_table_seal(t);
}

static void acpi_write_rsdp(uint8_t *buf, const struct acpi_layout *l, uint64_t base)
{
	struct acpi_rsdp r;
	uint8_t *t = buf + l->rsdp;

	memset(&r, 0, sizeof(r));
	memcpy(r.signature, "RSD PTR ", 8);
	memcpy(r.oem_id, ACPI_OEM_ID, 6);
	r.revision = 2;
	r.rsdt_address = 0;		/* no RSDT: every ACPI 2.0+ OS uses the XSDT */
	r.length = sizeof(r);
	r.xsdt_address = base + l->xsdt;
	memcpy(t, &r, sizeof(r));
	t[offsetof(struct acpi_rsdp, checksum)] = acpi_checksum(t, ACPI_RSDP_V1_LEN);
	t[offsetof(struct acpi_rsdp, extended_checksum)] = acpi_checksum(t, sizeof(r));
}

size_t acpi_build_tables(const struct acpi_config *cfg, uint8_t *buf, size_t len,
			 uint64_t base, size_t *rsdp_off)
{
	struct acpi_layout l;
	struct aml a;
	size_t used = 0;

	*rsdp_off = 0;
	if (cfg->nr_cpus < 1 || cfg->nr_cpus > ACPI_MAX_CPUS) {
		log_error("ACPI tables: %u vCPUs is outside 1-%u (the MADT's processor UIDs are 8-bit)",
			  cfg->nr_cpus, ACPI_MAX_CPUS);
		return 0;
	}

	aml_init_growable(&a);
	acpi_dsdt_aml(&a, cfg);
	if (a.overflow) {
		log_error("ACPI tables: the DSDT's AML is malformed or too large");
		goto out;
	}

	if (len > UINT64_MAX - base)
		len = (size_t)(UINT64_MAX - base);	/* the tables cannot wrap around */
	acpi_plan(&l, base, cfg->nr_cpus, a.len, cfg->ecam_base != 0);
	if (l.end > len) {
		log_error("ACPI tables for %u vCPUs need %zu bytes but only %zu fit at 0x%llx",
			  cfg->nr_cpus, l.end, len, (unsigned long long)base);
		goto out;
	}

	memset(buf, 0, l.end);
	acpi_write_facs(buf, &l);
	acpi_write_dsdt(buf, &l, &a);
	acpi_write_madt(buf, &l, cfg->nr_cpus);
	acpi_write_fadt(buf, &l, base);
	if (cfg->ecam_base)
		acpi_write_mcfg(buf, &l, cfg);
	acpi_write_xsdt(buf, &l, base);
	acpi_write_rsdp(buf, &l, base);
	*rsdp_off = l.rsdp;
	used = l.end;
out:
	aml_fini(&a);
	return used;
}

int acpi_install(struct guest_mem *mem, const struct acpi_config *cfg, uint64_t *rsdp)
{
	const uint64_t room = LAYOUT_ACPI_END - LAYOUT_ACPI;
	uint8_t *host = guest_mem_ptr(mem, LAYOUT_ACPI, room);
	size_t used, rsdp_off;

	if (!host) {
		log_error("ACPI tables: guest RAM does not cover 0x%llx-0x%llx",
			  (unsigned long long)LAYOUT_ACPI, (unsigned long long)LAYOUT_ACPI_END - 1);
		return -1;
	}
	used = acpi_build_tables(cfg, host, room, LAYOUT_ACPI, &rsdp_off);
	if (!used)
		return -1;
	*rsdp = LAYOUT_ACPI + rsdp_off;
	log_debug("ACPI tables at 0x%llx, %zu bytes", (unsigned long long)LAYOUT_ACPI, used);
	return 0;
}
