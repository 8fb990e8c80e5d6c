/*
 * smp: start every application processor the MADT lists. The BSP switches to
 * x2APIC mode, copies the real-mode trampoline (smp_tramp.S) below 1 MiB and
 * sends INIT then SIPI to each AP; each AP enters long mode, enables its
 * x2APIC, prints "smp: cpu N online", counts itself and halts. The BSP waits
 * (bounded) and prints "smp: N cpus online".
 */
#include "runtime.h"

extern const char ap_trampoline[], ap_trampoline_end[];

static volatile uint32_t cpus_online = 1;

void ap_main(void);

void ap_main(void)
{
	uint32_t id = x2apic_enable() ? x2apic_id() : 0xffffffff;

	printf("smp: cpu %u online\n", id);
	__atomic_fetch_add(&cpus_online, 1, __ATOMIC_SEQ_CST);
	halt_forever();
}

void guest_main(void)
{
	const struct acpi_header *madt = acpi_find("APIC");
	uint32_t ids[256], nr = 0;

	if (!madt) {
		print("smp: no MADT\n");
		return;
	}
	const uint8_t *p = (const uint8_t *)madt + 44, *end = (const uint8_t *)madt + madt->length;
	for (; p + 2 <= end && p[1] >= 2; p += p[1]) {
		if (nr == 256)
			break;
		if (p[0] == 0 && (p[4] & 1))
			ids[nr++] = p[3];
		else if (p[0] == 9 && (p[8] & 1))
			ids[nr++] = *(const uint32_t *)(p + 4);
	}
	if (!x2apic_enable()) {
		print("smp: no x2APIC\n");
		return;
	}
	uint32_t self = x2apic_id();
	wrmsr(X2APIC_SVR, 0x1ff);		/* software-enable, spurious vector 0xff */
	printf("smp: bsp %u, %u cpus in the MADT\n", self, nr);

	memcpy((void *)AP_TRAMPOLINE, ap_trampoline, (size_t)(ap_trampoline_end - ap_trampoline));
	uint32_t started = 1;
	for (uint32_t i = 0; i < nr; i++) {
		if (ids[i] == self || started > AP_MAX)
			continue;
		x2apic_send_ipi(ids[i], 0x4500);				/* INIT, assert */
		x2apic_send_ipi(ids[i], 0x4600 | (AP_TRAMPOLINE >> 12));	/* SIPI */
		started++;
	}
	/* ~6 s in the emulator, well under a second on hardware: either way a dead AP shows. */
	for (uint32_t spin = 0; cpus_online < started && spin < 1000000; spin++)
		cpu_relax();
	printf("smp: %u cpus online\n", cpus_online);
}
