/*
 * TEMPORARY: placeholders while the parts below are written. Each block is
 * deleted by whoever lands the real implementation. This file goes away.
 */
#include <stdlib.h>

#include "util/log.h"

/* ---- BEGIN console + serial (backends/console.c, devices/serial.c) ---- */
#include "backends/console.h"
#include "devices/serial.h"
struct console *console_open(const struct vm_config *cfg) { (void)cfg; log_error("console not implemented"); return NULL; }
void console_set_quit_handler(struct console *c, void (*fn)(void *), void *o) { (void)c; (void)fn; (void)o; }
void console_set_observer(struct console *c, void (*fn)(void *, const uint8_t *, size_t), void *o) { (void)c; (void)fn; (void)o; }
int console_start(struct console *c) { (void)c; return -1; }
void console_stop(struct console *c, int t) { (void)c; (void)t; }
uint64_t console_dropped(struct console *c) { (void)c; return 0; }
void console_close(struct console *c) { (void)c; }
struct serial *serial_create(struct console *con, void (*set_irq)(void *, int), void *o) { (void)con; (void)set_irq; (void)o; return NULL; }
void serial_destroy(struct serial *s) { (void)s; }
const struct bus_ops serial_bus_ops;
/* ---- END console + serial ---- */

/* ---- BEGIN acpi (arch/x86/acpi.c, devices/acpi_pm.c) ---- */
#include "arch/x86/acpi.h"
#include "devices/acpi_pm.h"
int acpi_install(struct guest_mem *mem, const struct acpi_config *cfg, uint64_t *rsdp) { (void)mem; (void)cfg; *rsdp = 0; return 0; }
int acpi_pm_create(struct vm *vm) { (void)vm; return 0; }
/* ---- END acpi ---- */

/* ---- BEGIN loaders (arch/x86/boot_*.c) ---- */
#include "arch/x86/boot.h"
int boot_load(struct guest_mem *mem, const struct vm_config *cfg, uint64_t rsdp, struct boot_plan *plan) { (void)mem; (void)cfg; (void)rsdp; (void)plan; log_error("loader not implemented"); return -1; }
/* ---- END loaders ---- */

/* ---- BEGIN initramfs (tools/initramfs.c, cli/initramfs.c) ---- */
#include "cli/cli.h"
int cli_initramfs(int argc, char **argv) { (void)argc; (void)argv; log_error("initramfs not implemented"); return 1; }
/* ---- END initramfs ---- */
