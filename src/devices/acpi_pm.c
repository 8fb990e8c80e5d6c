#include "devices/acpi_pm.h"
#include "devices/acpi_pm_internal.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/log.h"


/* PM1_STS / PM1_EN bits (ACPI 6.3 tables 4-16 to 4-19). */
#define PM1_STS_TMR		(1U << 0)
#define PM1_STS_BM		(1U << 4)
#define PM1_STS_GBL		(1U << 5)
#define PM1_STS_PWRBTN		(1U << 8)
#define PM1_STS_SLPBTN		(1U << 9)
#define PM1_STS_RTC		(1U << 10)
#define PM1_STS_PCIEXP_WAKE	(1U << 14)
#define PM1_STS_WAK		(1U << 15)
#define PM1_STS_MASK		(PM1_STS_TMR | PM1_STS_BM | PM1_STS_GBL | PM1_STS_PWRBTN | \
				 PM1_STS_SLPBTN | PM1_STS_RTC | PM1_STS_PCIEXP_WAKE | PM1_STS_WAK)
/*
 * PM1_EN keeps what is written to its defined bits: ACPICA reads an enable
 * bit back after setting it (GBL_EN for the global lock at boot) and logs an
 * error if it did not stick.
 */
#define PM1_EN_TMR		(1U << 0)
#define PM1_EN_GBL		(1U << 5)
#define PM1_EN_PWRBTN		(1U << 8)
#define PM1_EN_SLPBTN		(1U << 9)
#define PM1_EN_RTC		(1U << 10)
#define PM1_EN_PCIEXP_WAKE_DIS	(1U << 14)
#define PM1_EN_MASK		(PM1_EN_TMR | PM1_EN_GBL | PM1_EN_PWRBTN | PM1_EN_SLPBTN | \
				 PM1_EN_RTC | PM1_EN_PCIEXP_WAKE_DIS)

/* PM1_CNT bits (ACPI 6.3 table 4-20). */
#define PM1_CNT_SCI_EN		(1U << 0)	/* always set: no SMI, always in ACPI mode */
#define PM1_CNT_BM_RLD		(1U << 1)
#define PM1_CNT_GBL_RLS		(1U << 2)	/* write-only */
#define PM1_CNT_SLP_TYP_SHIFT	10
#define PM1_CNT_SLP_TYP_MASK	(7U << PM1_CNT_SLP_TYP_SHIFT)
#define PM1_CNT_SLP_EN		(1U << 13)	/* write-only */
#define PM1_CNT_STORED		(PM1_CNT_BM_RLD | PM1_CNT_SLP_TYP_MASK)

/* The status bits that have an enable bit at the same position: SCI sources. */
#define PM1_SCI_SOURCES		(PM1_EN_TMR | PM1_EN_GBL | PM1_EN_PWRBTN | PM1_EN_SLPBTN | \
				 PM1_EN_RTC)

/*
 * The only event bootvm raises is the fixed-feature power button. The SCI is
 * a level: asserted while any status bit and its enable bit are both set,
 * so it drops once the guest clears the status (write 1) or the enable.
 */
struct acpi_pm {
	pthread_mutex_t lock;
	struct acpi_pm_ports ports;
	struct stop_hook stop;
	void (*sci)(void *opaque, int level);	/* may be NULL */
	void *sci_opaque;
	uint16_t sts;
	uint16_t en;
	uint16_t cnt;		/* PM1_CNT_STORED bits only */
	bool sci_level;		/* what the line was last driven to */
	bool warned_sleep;	/* the guest asked for an unsupported sleep state */
};

/*
 * Drive the SCI to what STS and EN say, on a change only. Under pm->lock, so
 * that two threads' updates reach the irqchip in the order they were made.
 */
static void acpi_pm_update_sci_locked(struct acpi_pm *pm)
{
	bool level = pm->sts & pm->en & PM1_SCI_SOURCES;

	if (level == pm->sci_level)
		return;
	pm->sci_level = level;
	if (pm->sci)
		pm->sci(pm->sci_opaque, level);
}

/*
 * The event block is a little-endian pair of 16-bit registers; an access of
 * 1, 2 or 4 bytes may start at any offset (bus.c keeps it inside the block).
 */
static uint64_t acpi_pm_evt_read(void *dev, uint64_t offset, unsigned int size)
{
	struct acpi_pm *pm = dev;
	uint32_t block;

	pthread_mutex_lock(&pm->lock);
	block = (uint32_t)pm->sts | (uint32_t)pm->en << 16;
	pthread_mutex_unlock(&pm->lock);
	return (block >> (8 * offset)) & (size >= 4 ? UINT32_MAX : (1U << (8 * size)) - 1);
}

static void acpi_pm_evt_write(void *dev, uint64_t offset, unsigned int size, uint64_t value)
{
	struct acpi_pm *pm = dev;
	uint32_t mask = (size >= 4 ? UINT32_MAX : (1U << (8 * size)) - 1) << (8 * offset);
	uint32_t v = (uint32_t)(value << (8 * offset)) & mask;

	pthread_mutex_lock(&pm->lock);
	pm->sts &= (uint16_t)~v;			/* write 1 to clear */
	pm->en = (uint16_t)(((pm->en & ~(mask >> 16)) | (v >> 16)) & PM1_EN_MASK);
	acpi_pm_update_sci_locked(pm);
	pthread_mutex_unlock(&pm->lock);
}

static uint64_t acpi_pm_cnt_read(void *dev, uint64_t offset, unsigned int size)
{
	struct acpi_pm *pm = dev;
	uint32_t cnt;

	pthread_mutex_lock(&pm->lock);
	cnt = pm->cnt | PM1_CNT_SCI_EN;
	pthread_mutex_unlock(&pm->lock);
	return (cnt >> (8 * offset)) & ((1U << (8 * size)) - 1);
}

static void acpi_pm_cnt_write(void *dev, uint64_t offset, unsigned int size, uint64_t value)
{
	struct acpi_pm *pm = dev;
	uint32_t mask = (size >= 2 ? 0xffffU : 0xffU) << (8 * offset);
	uint32_t v = (uint32_t)(value << (8 * offset)) & mask;
	unsigned int slp_typ;
	bool sleep, warn = false;

	pthread_mutex_lock(&pm->lock);
	pm->cnt = (uint16_t)(((pm->cnt & ~mask) | v) & PM1_CNT_STORED);
	slp_typ = (pm->cnt & PM1_CNT_SLP_TYP_MASK) >> PM1_CNT_SLP_TYP_SHIFT;
	/* ACPICA writes SLP_TYP first, then SLP_TYP with SLP_EN: only the latter acts. */
	sleep = v & PM1_CNT_SLP_EN;
	if (sleep && slp_typ != ACPI_PM_S5_SLP_TYP && !pm->warned_sleep) {
		pm->warned_sleep = true;
		warn = true;
	}
	pthread_mutex_unlock(&pm->lock);

	if (sleep && slp_typ == ACPI_PM_S5_SLP_TYP)
		stop_hook_request(&pm->stop, VM_STOP_POWEROFF, "ACPI S5");
	else if (warn)
		log_warn("guest asked for ACPI sleep type %u; only S5 (%u) is supported, ignored",
			 slp_typ, ACPI_PM_S5_SLP_TYP);
}

static uint64_t acpi_pm_reset_read(void *dev, uint64_t offset, unsigned int size)
{
	return 0;
}

static void acpi_pm_reset_write(void *dev, uint64_t offset, unsigned int size, uint64_t value)
{
	struct acpi_pm *pm = dev;

	if ((value & 0xff) == ACPI_PM_RESET_VALUE)
		stop_hook_request(&pm->stop, VM_STOP_RESET, "ACPI reset register");
}

void acpi_pm_press_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= PM1_STS_PWRBTN;	/* latched even while PWRBTN_EN is clear */
	acpi_pm_update_sci_locked(pm);
	pthread_mutex_unlock(&pm->lock);
}

bool acpi_pm_power_button_enabled(struct acpi_pm *pm)
{
	bool on;

	pthread_mutex_lock(&pm->lock);
	on = pm->en & PM1_EN_PWRBTN;
	pthread_mutex_unlock(&pm->lock);
	return on;
}

void acpi_pm_test_set_status(struct acpi_pm *pm, uint16_t bits)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= bits & PM1_STS_MASK;
	pthread_mutex_unlock(&pm->lock);
}

static const struct bus_ops acpi_pm_evt_ops = {
	.read = acpi_pm_evt_read,
	.write = acpi_pm_evt_write,
};

static const struct bus_ops acpi_pm_cnt_ops = {
	.read = acpi_pm_cnt_read,
	.write = acpi_pm_cnt_write,
};

static const struct bus_ops acpi_pm_reset_ops = {
	.read = acpi_pm_reset_read,
	.write = acpi_pm_reset_write,
};

static void acpi_pm_reset(void *dev)
{
	struct acpi_pm *pm = dev;

	pthread_mutex_lock(&pm->lock);
	pm->sts = 0;
	pm->en = 0;
	pm->cnt = 0;
	pm->warned_sleep = false;
	acpi_pm_update_sci_locked(pm);
	pthread_mutex_unlock(&pm->lock);
}

struct acpi_pm *acpi_pm_create(struct bus *pio, const struct acpi_pm_ports *ports,
			       const struct stop_hook *stop,
			       void (*sci)(void *opaque, int level), void *sci_opaque)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));

	if (!pm) {
		log_error("ACPI PM: out of memory");
		return NULL;
	}
	pthread_mutex_init(&pm->lock, NULL);
	pm->ports = *ports;
	pm->stop = *stop;
	pm->sci = sci;
	pm->sci_opaque = sci_opaque;
	if (bus_register(pio, ports->evt, ACPI_PM1_EVT_LEN, "ACPI PM1a event",
			 &acpi_pm_evt_ops, pm) < 0)
		goto err_free;
	if (bus_register(pio, ports->cnt, ACPI_PM1_CNT_LEN, "ACPI PM1a control",
			 &acpi_pm_cnt_ops, pm) < 0)
		goto err_evt;
	if (bus_register(pio, ports->reset, ACPI_RESET_REG_LEN, "ACPI reset",
			 &acpi_pm_reset_ops, pm) < 0)
		goto err_cnt;
	return pm;

err_cnt:
	bus_unregister(pio, ports->cnt);
err_evt:
	bus_unregister(pio, ports->evt);
err_free:
	pthread_mutex_destroy(&pm->lock);
	free(pm);
	return NULL;
}

static void acpi_pm_destroy(void *dev)
{
	struct acpi_pm *pm = dev;

	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

const struct device_ops acpi_pm_device_ops = {
	.kind = "acpi-pm",
	.reset = acpi_pm_reset,
	.destroy = acpi_pm_destroy,
};
