/*
 * devices/acpi_pm.c: the PM1a event and control blocks and the reset
 * register, driven through the port-I/O bus as a vCPU would (no KVM).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "devices/acpi_pm.h"
#include "devices/acpi_pm_internal.h"
#include "util/log.h"
#include "vmm/bus.h"
#include "vmm/vm.h"

#include "helpers.h"

#define PM1_STS		PORT_ACPI_PM1A_EVT
#define PM1_EN		(PORT_ACPI_PM1A_EVT + 2)
#define PM1_CNT		PORT_ACPI_PM1A_CNT

#define STS_PWRBTN	(1U << 8)
#define STS_WAK		(1U << 15)
#define STS_TMR		(1U << 0)
#define EN_PWRBTN	(1U << 8)
#define EN_GBL		(1U << 5)
#define CNT_SCI_EN	(1U << 0)
#define CNT_SLP_EN	(1U << 13)
#define SLP_TYP(t)	((unsigned int)(t) << 10)

/* The SCI line as the device drives it. */
struct sci_line {
	pthread_mutex_t lock;
	int level;
	unsigned int raised, lowered;	/* transitions seen */
	bool repeated;			/* driven to the level it already had */
};

struct fixture {
	struct vm vm;
	struct acpi_pm *pm;
	struct helper_log log;
	struct sci_line sci;
};

static const struct acpi_pm_ports ports = {
	.evt = PORT_ACPI_PM1A_EVT, .cnt = PORT_ACPI_PM1A_CNT, .reset = PORT_ACPI_RESET,
};

static void stop_vm(void *opaque, enum vm_stop_reason reason, const char *why)
{
	vm_request_stop(opaque, reason, why);
}

static void sci_set(void *opaque, int level)
{
	struct sci_line *l = opaque;

	pthread_mutex_lock(&l->lock);
	if (level == l->level)
		l->repeated = true;
	else if (level)
		l->raised++;
	else
		l->lowered++;
	l->level = level;
	pthread_mutex_unlock(&l->lock);
}

static struct acpi_pm *create(struct vm *vm, struct sci_line *sci)
{
	return acpi_pm_create(&vm->pio, &ports, &(struct stop_hook){ stop_vm, vm },
			      sci ? sci_set : NULL, sci);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || vm_stop_init(&f->vm) < 0)
		return -1;
	bus_init(&f->vm.pio, "pio");
	bus_init(&f->vm.mmio, "mmio");
	log_set_sink(helper_log_sink, &f->log);
	pthread_mutex_init(&f->sci.lock, NULL);
	f->pm = create(&f->vm, &f->sci);
	if (!f->pm)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	log_set_sink(NULL, NULL);
	acpi_pm_device_ops.destroy(f->pm);
	pthread_mutex_destroy(&f->sci.lock);
	vm_stop_fini(&f->vm);
	bus_destroy(&f->vm.pio);
	bus_destroy(&f->vm.mmio);
	free(f);
	return 0;
}

static uint64_t in(struct vm *vm, uint16_t port, unsigned int size)
{
	uint8_t d[8] = { 0 };
	uint64_t v = 0;

	assert_true(bus_access(&vm->pio, port, d, size, false));
	memcpy(&v, d, size);
	return v;
}

static void out(struct vm *vm, uint16_t port, unsigned int size, uint64_t v)
{
	uint8_t d[8];

	memcpy(d, &v, sizeof(d));
	assert_true(bus_access(&vm->pio, port, d, size, true));
}

static void test_registered_ranges(void **state)
{
	struct fixture *f = *state;
	struct bus_range r;

	assert_true(bus_find(&f->vm.pio, PORT_ACPI_PM1A_EVT, &r));
	assert_int_equal(r.base, PORT_ACPI_PM1A_EVT);
	assert_int_equal(r.len, 4);
	assert_true(bus_find(&f->vm.pio, PORT_ACPI_PM1A_CNT, &r));
	assert_int_equal(r.base, PORT_ACPI_PM1A_CNT);
	assert_int_equal(r.len, 2);
	assert_true(bus_find(&f->vm.pio, PORT_ACPI_RESET, &r));
	assert_int_equal(r.len, 1);
	assert_false(bus_find(&f->vm.pio, PORT_ACPI_PM1A_CNT + 2, &r));
	assert_false(bus_find(&f->vm.pio, PORT_ACPI_RESET + 1, &r));

	/* Creating it twice on one bus is a registration error, logged once. */
	assert_null(create(&f->vm, NULL));
	assert_int_equal(f->log.errors, 1);
}

/* ACPICA's S5 sequence: SLP_TYP alone, then SLP_TYP with SLP_EN. */
static void test_s5_powers_off(void **state)
{
	struct fixture *f = *state;

	out(&f->vm, PM1_CNT, 2, CNT_SCI_EN | SLP_TYP(ACPI_PM_S5_SLP_TYP));
	assert_false(vm_is_stopping(&f->vm));
	assert_int_equal(in(&f->vm, PM1_CNT, 2), CNT_SCI_EN | SLP_TYP(ACPI_PM_S5_SLP_TYP));
	out(&f->vm, PM1_CNT, 2, CNT_SCI_EN | SLP_TYP(ACPI_PM_S5_SLP_TYP) | CNT_SLP_EN);
	assert_true(vm_is_stopping(&f->vm));
	assert_int_equal(vm_stop_reason(&f->vm), VM_STOP_POWEROFF);
	assert_int_equal(f->log.warnings, 0);
}

static void test_other_sleep_types_ignored(void **state)
{
	struct fixture *f = *state;

	for (unsigned int typ = 0; typ < 8; typ++) {
		if (typ == ACPI_PM_S5_SLP_TYP)
			continue;
		out(&f->vm, PM1_CNT, 2, SLP_TYP(typ) | CNT_SLP_EN);
		assert_false(vm_is_stopping(&f->vm));
		/* SLP_EN is write-only; SLP_TYP reads back. */
		assert_int_equal(in(&f->vm, PM1_CNT, 2), CNT_SCI_EN | SLP_TYP(typ));
	}
	/* One warning, not one per attempt: the guest controls how often it asks. */
	assert_int_equal(f->log.warnings, 1);
	assert_non_null(strstr(f->log.last_warning, "sleep"));
	/* S5 still works afterwards. */
	out(&f->vm, PM1_CNT, 2, SLP_TYP(ACPI_PM_S5_SLP_TYP) | CNT_SLP_EN);
	assert_int_equal(vm_stop_reason(&f->vm), VM_STOP_POWEROFF);
}

static void test_slp_en_clear_no_stop(void **state)
{
	struct fixture *f = *state;

	for (unsigned int typ = 0; typ < 8; typ++) {
		out(&f->vm, PM1_CNT, 2, SLP_TYP(typ));
		out(&f->vm, PM1_CNT + 1, 1, SLP_TYP(typ) >> 8);
	}
	out(&f->vm, PM1_CNT, 2, 0xffff & ~CNT_SLP_EN);
	assert_false(vm_is_stopping(&f->vm));
	assert_int_equal(f->log.warnings, 0);
}

static void test_sci_en_reads_one(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(in(&f->vm, PM1_CNT, 2), CNT_SCI_EN);
	assert_int_equal(in(&f->vm, PM1_CNT, 1), CNT_SCI_EN);
	assert_int_equal(in(&f->vm, PM1_CNT + 1, 1), 0);
	/* Writing 0 cannot leave ACPI mode (there is no SMI to switch back). */
	out(&f->vm, PM1_CNT, 2, 0);
	assert_int_equal(in(&f->vm, PM1_CNT, 2), CNT_SCI_EN);
	/* GBL_RLS (bit 2) is write-only; BM_RLD (bit 1) is kept. */
	out(&f->vm, PM1_CNT, 2, (1U << 1) | (1U << 2));
	assert_int_equal(in(&f->vm, PM1_CNT, 2), CNT_SCI_EN | (1U << 1));
	assert_false(vm_is_stopping(&f->vm));
}

static void test_reset_register(void **state)
{
	struct fixture *f = *state;
	static const uint8_t ignored[] = { 0x00, 0x02, 0x06, 0x0e, 0xfe, 0xff };

	for (size_t i = 0; i < sizeof(ignored); i++) {
		out(&f->vm, PORT_ACPI_RESET, 1, ignored[i]);
		assert_false(vm_is_stopping(&f->vm));
	}
	out(&f->vm, PORT_ACPI_RESET, 1, ACPI_PM_RESET_VALUE);
	assert_true(vm_is_stopping(&f->vm));
	assert_int_equal(vm_stop_reason(&f->vm), VM_STOP_RESET);
}

static void test_pm1_sts_write_one_to_clear(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(in(&f->vm, PM1_STS, 2), 0);
	/* Writing ones to clear bits never sets them. */
	out(&f->vm, PM1_STS, 2, 0xffff);
	assert_int_equal(in(&f->vm, PM1_STS, 2), 0);

	acpi_pm_test_set_status(f->pm, STS_PWRBTN | STS_WAK | STS_TMR);
	assert_int_equal(in(&f->vm, PM1_STS, 2), STS_PWRBTN | STS_WAK | STS_TMR);
	out(&f->vm, PM1_STS, 2, 0);				/* zeros change nothing */
	assert_int_equal(in(&f->vm, PM1_STS, 2), STS_PWRBTN | STS_WAK | STS_TMR);
	out(&f->vm, PM1_STS, 2, STS_PWRBTN);
	assert_int_equal(in(&f->vm, PM1_STS, 2), STS_WAK | STS_TMR);
	out(&f->vm, PM1_STS + 1, 1, STS_WAK >> 8);		/* byte access, high byte */
	assert_int_equal(in(&f->vm, PM1_STS, 2), STS_TMR);
	out(&f->vm, PM1_STS, 1, STS_TMR);			/* byte access, low byte */
	assert_int_equal(in(&f->vm, PM1_STS, 2), 0);

	/* Clearing status leaves PM1_EN alone, and the other way round. */
	out(&f->vm, PM1_EN, 2, EN_PWRBTN);
	acpi_pm_test_set_status(f->pm, STS_PWRBTN);
	out(&f->vm, PM1_STS, 2, 0xffff);
	assert_int_equal(in(&f->vm, PM1_EN, 2), EN_PWRBTN);
	acpi_pm_test_set_status(f->pm, STS_PWRBTN);
	out(&f->vm, PM1_EN, 2, 0);
	assert_int_equal(in(&f->vm, PM1_STS, 2), STS_PWRBTN);
}

static void test_byte_and_dword_accesses(void **state)
{
	struct fixture *f = *state;

	/* PM1_EN keeps its defined bits, written as a word or as bytes. */
	out(&f->vm, PM1_EN, 2, EN_PWRBTN | EN_GBL);
	assert_int_equal(in(&f->vm, PM1_EN, 2), EN_PWRBTN | EN_GBL);
	assert_int_equal(in(&f->vm, PM1_EN, 1), EN_GBL);
	assert_int_equal(in(&f->vm, PM1_EN + 1, 1), EN_PWRBTN >> 8);
	out(&f->vm, PM1_EN + 1, 1, 0);
	assert_int_equal(in(&f->vm, PM1_EN, 2), EN_GBL);
	out(&f->vm, PM1_EN, 2, 0xffff);
	assert_int_equal(in(&f->vm, PM1_EN, 2), 0x4721);	/* TMR GBL PWRBTN SLPBTN RTC PCIEXP */

	/* The whole event block as one dword: STS low, EN high. */
	acpi_pm_test_set_status(f->pm, STS_WAK);
	assert_int_equal(in(&f->vm, PM1_STS, 4), (uint32_t)0x4721 << 16 | STS_WAK);
	/* A word straddling the two registers. */
	assert_int_equal(in(&f->vm, PM1_STS + 1, 2), (0x21U << 8) | (STS_WAK >> 8));
	out(&f->vm, PM1_STS, 4, (uint32_t)EN_GBL << 16 | STS_WAK);
	assert_int_equal(in(&f->vm, PM1_STS, 4), (uint32_t)EN_GBL << 16);

	/* S5 with one byte write to the control block's high byte. */
	out(&f->vm, PM1_CNT + 1, 1, (SLP_TYP(ACPI_PM_S5_SLP_TYP) | CNT_SLP_EN) >> 8);
	assert_int_equal(vm_stop_reason(&f->vm), VM_STOP_POWEROFF);
}

/*
 * A second VM in the same process has its own registers from power-on,
 * and what one guest writes or triggers never reaches the other; reset
 * brings an instance back to power-on values.
 */
static void test_two_vms_and_reset(void **state)
{
	struct fixture *f = *state;
	struct acpi_pm *pm2;
	struct vm vm2;

	out(&f->vm, PM1_EN, 2, EN_PWRBTN);
	out(&f->vm, PM1_CNT, 2, SLP_TYP(3));
	memset(&vm2, 0, sizeof(vm2));
	assert_int_equal(vm_stop_init(&vm2), 0);
	bus_init(&vm2.pio, "pio");
	pm2 = create(&vm2, NULL);
	assert_non_null(pm2);
	assert_int_equal(in(&vm2, PM1_EN, 2), 0);
	assert_int_equal(in(&vm2, PM1_CNT, 2), CNT_SCI_EN);
	out(&vm2, PORT_ACPI_RESET, 1, ACPI_PM_RESET_VALUE);
	assert_int_equal(vm_stop_reason(&vm2), VM_STOP_RESET);
	assert_false(vm_is_stopping(&f->vm));
	assert_int_equal(in(&f->vm, PM1_EN, 2), EN_PWRBTN);

	acpi_pm_device_ops.reset(f->pm);
	assert_int_equal(in(&f->vm, PM1_EN, 2), 0);
	assert_int_equal(in(&f->vm, PM1_CNT, 2), CNT_SCI_EN);

	acpi_pm_device_ops.destroy(pm2);
	bus_destroy(&vm2.pio);
	vm_stop_fini(&vm2);
}

/* The button latches PWRBTN_STS whether or not the guest enabled it. */
static void test_power_button_sets_status(void **state)
{
	struct fixture *f = *state;

	assert_false(acpi_pm_power_button_enabled(f->pm));
	acpi_pm_press_power_button(f->pm);
	assert_int_equal(in(&f->vm, PM1_STS, 2), STS_PWRBTN);
	assert_int_equal(in(&f->vm, PM1_STS + 1, 1), STS_PWRBTN >> 8);
	/* A second press before the guest cleared it: still one bit. */
	acpi_pm_press_power_button(f->pm);
	assert_int_equal(in(&f->vm, PM1_STS, 2), STS_PWRBTN);
	/* Write 1 to clear; the enable register is untouched by all this. */
	out(&f->vm, PM1_STS, 2, STS_PWRBTN);
	assert_int_equal(in(&f->vm, PM1_STS, 2), 0);
	assert_int_equal(in(&f->vm, PM1_EN, 2), 0);
	/* Nothing but the status bit: no stop, no warning. */
	assert_false(vm_is_stopping(&f->vm));
	assert_int_equal(f->log.warnings + f->log.errors, 0);
}

/* The SCI is raised only while PWRBTN_STS and PWRBTN_EN are both set. */
static void test_power_button_sci(void **state)
{
	struct fixture *f = *state;

	/* Disabled: the press latches but the line stays low. */
	acpi_pm_press_power_button(f->pm);
	assert_int_equal(f->sci.level, 0);
	assert_int_equal(f->sci.raised, 0);
	/* Enabling with the status pending raises it at once. */
	out(&f->vm, PM1_EN, 2, EN_PWRBTN);
	assert_true(acpi_pm_power_button_enabled(f->pm));
	assert_int_equal(f->sci.level, 1);
	assert_int_equal(f->sci.raised, 1);
	/* Writing 0 to the status, or other enable bits, keeps it up (a level). */
	out(&f->vm, PM1_STS, 2, 0);
	out(&f->vm, PM1_EN, 2, EN_PWRBTN | EN_GBL);
	assert_int_equal(f->sci.level, 1);
	/* Clearing the status (write 1, a byte to the high half) drops it. */
	out(&f->vm, PM1_STS + 1, 1, STS_PWRBTN >> 8);
	assert_int_equal(f->sci.level, 0);
	assert_int_equal(f->sci.lowered, 1);

	/* Enabled: a press raises it right away; clearing the enable drops it too. */
	acpi_pm_press_power_button(f->pm);
	assert_int_equal(f->sci.level, 1);
	assert_int_equal(f->sci.raised, 2);
	out(&f->vm, PM1_EN, 2, EN_GBL);
	assert_int_equal(f->sci.level, 0);
	assert_int_equal(in(&f->vm, PM1_STS, 2), STS_PWRBTN);	/* still latched */
	out(&f->vm, PM1_EN, 2, EN_PWRBTN);
	assert_int_equal(f->sci.level, 1);
	/* A status bit without an enable bit (WAK_STS) never raises it. */
	out(&f->vm, PM1_STS, 2, 0xffff);
	assert_int_equal(f->sci.level, 0);
	acpi_pm_test_set_status(f->pm, STS_WAK);
	out(&f->vm, PM1_EN, 2, 0xffff);
	assert_int_equal(f->sci.level, 0);

	/* Reset: the line drops with the registers. */
	acpi_pm_press_power_button(f->pm);
	assert_int_equal(f->sci.level, 1);
	acpi_pm_device_ops.reset(f->pm);
	assert_int_equal(f->sci.level, 0);
	assert_int_equal(in(&f->vm, PM1_STS, 2), 0);
	assert_int_equal(f->sci.raised, 4);
	assert_int_equal(f->sci.lowered, 4);
	/* Driven on changes only: never twice to the same level. */
	assert_false(f->sci.repeated);
}

/* A press from another thread while vCPUs rewrite the registers: the line follows the state. */
static void *press_thread(void *arg)
{
	struct fixture *f = arg;

	for (int i = 0; i < 20000; i++)
		acpi_pm_press_power_button(f->pm);
	return NULL;
}

static void *clear_thread(void *arg)
{
	struct fixture *f = arg;
	uint8_t d[2] = { 0, STS_PWRBTN >> 8 };

	for (int i = 0; i < 20000; i++)
		bus_access(&f->vm.pio, PM1_STS, d, 2, true);
	return NULL;
}

static void test_power_button_threads(void **state)
{
	struct fixture *f = *state;
	pthread_t t[2];

	out(&f->vm, PM1_EN, 2, EN_PWRBTN);
	assert_int_equal(pthread_create(&t[0], NULL, press_thread, f), 0);
	assert_int_equal(pthread_create(&t[1], NULL, clear_thread, f), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	/* Whatever the last step was, the line matches the status now. */
	assert_int_equal(f->sci.level, (in(&f->vm, PM1_STS, 2) & STS_PWRBTN) != 0);
	assert_false(f->sci.repeated);
	out(&f->vm, PM1_STS, 2, STS_PWRBTN);
	assert_int_equal(f->sci.level, 0);
	assert_int_equal(f->sci.raised, f->sci.lowered);
}

/* Several vCPU threads at once: the lock keeps read-modify-writes whole. */
struct hammer {
	struct vm *vm;
	unsigned int id;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	uint8_t d[2];

	for (int i = 0; i < 20000; i++) {
		/* Each thread owns one byte of PM1_EN and rewrites it. */
		d[0] = h->id ? 0 : 0x21;
		d[1] = 0;
		bus_access(&h->vm->pio, PM1_EN + h->id, d, 1, true);
		d[0] = h->id ? 0x47 : 0x21;
		bus_access(&h->vm->pio, PM1_EN + h->id, d, 1, true);
		bus_access(&h->vm->pio, PM1_STS, d, 2, false);
		bus_access(&h->vm->pio, PM1_CNT, d, 2, false);
	}
	return NULL;
}

static void test_concurrent_access(void **state)
{
	struct fixture *f = *state;
	pthread_t t[2];
	struct hammer h[2] = { { &f->vm, 0 }, { &f->vm, 1 } };

	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer_thread, &h[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(in(&f->vm, PM1_EN, 2), 0x4721);
	assert_false(vm_is_stopping(&f->vm));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_registered_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_s5_powers_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_sleep_types_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slp_en_clear_no_stop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sci_en_reads_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_register, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pm1_sts_write_one_to_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_byte_and_dword_accesses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_vms_and_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_power_button_sets_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_power_button_sci, setup, teardown),
		cmocka_unit_test_setup_teardown(test_power_button_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
