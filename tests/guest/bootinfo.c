/*
 * bootinfo: what the boot protocol handed over. Output (tests/e2e parse it):
 *   cmdline=[<the bytes exactly>]
 *   e820: <addr> <size> <type>        (hex, one line per entry, in order)
 *   usable=<bytes, hex>
 *   initrd: addr=<hex> size=<hex> fnv1a=<hex>   or   initrd: none
 */
#include "runtime.h"

void guest_main(void)
{
	uint64_t usable = 0;

	print("cmdline=[");
	print_bytes(boot.cmdline, strlen(boot.cmdline));
	print("]\n");
	for (unsigned int i = 0; i < boot.nr_mem; i++) {
		const struct boot_mem *m = &boot.mem[i];
		printf("e820: 0x%lx 0x%lx %u\n", m->addr, m->size, m->type);
		if (m->type == 1)
			usable += m->size;
	}
	printf("usable=0x%lx\n", usable);
	if (!boot.initrd_size) {
		print("initrd: none\n");
		return;
	}
	/* FNV-1a 32; tests keep initrds to a few KiB (ring 0 is emulated here). */
	const uint8_t *p = (const uint8_t *)boot.initrd_addr;
	uint32_t h = 0x811c9dc5;
	for (uint64_t i = 0; i < boot.initrd_size; i++)
		h = (h ^ p[i]) * 0x01000193;
	printf("initrd: addr=0x%lx size=0x%lx fnv1a=0x%08x\n", boot.initrd_addr, boot.initrd_size, h);
}
