/* devices/serial.c: the 16550A model, alone and behind a real console. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/console.h"
#include "devices/serial.h"
#include "util/log.h"

#include "helpers.h"

enum { RBR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

/* The interrupt line as the UART drives it; every call must be a change. */
struct irq_line {
	pthread_mutex_t lock;
	int level;
	int calls;
	int rises;
	int non_changes;
};

struct fixture {
	struct irq_line irq;
	struct console *con;
	struct serial *s;
	/* what reached the console (via its observer) */
	pthread_mutex_t out_lock;
	uint8_t out[64];
	size_t out_len;
};

static void fake_irq(void *opaque, int level)
{
	struct irq_line *l = opaque;

	pthread_mutex_lock(&l->lock);
	l->calls++;
	if (level == l->level)
		l->non_changes++;
	if (level && !l->level)
		l->rises++;
	l->level = level;
	pthread_mutex_unlock(&l->lock);
}

static int irq_level(struct irq_line *l)
{
	return helper_locked_get(&l->lock, &l->level);
}

static void observe(void *opaque, const uint8_t *buf, size_t len)
{
	struct fixture *f = opaque;

	pthread_mutex_lock(&f->out_lock);
	for (size_t i = 0; i < len; i++)
		if (f->out_len < sizeof(f->out))
			f->out[f->out_len++] = buf[i];
	pthread_mutex_unlock(&f->out_lock);
}

static uint8_t rd(struct serial *s, unsigned int reg)
{
	return (uint8_t)serial_bus_ops.read(s, reg, 1);
}

static void wr(struct serial *s, unsigned int reg, uint8_t v)
{
	serial_bus_ops.write(s, reg, 1, v);
}

/* A UART behind a console that discards output (and shows it to the observer). */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	pthread_mutex_init(&f->irq.lock, NULL);
	pthread_mutex_init(&f->out_lock, NULL);
	f->con = console_open_fds(CONSOLE_NONE, -1, -1);
	assert_non_null(f->con);
	console_set_observer(f->con, observe, f);
	f->s = serial_create(f->con, fake_irq, &f->irq);
	assert_non_null(f->s);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	/* The line was only ever driven on changes. */
	assert_int_equal(f->irq.non_changes, 0);
	serial_destroy(f->s);
	console_close(f->con);
	pthread_mutex_destroy(&f->irq.lock);
	pthread_mutex_destroy(&f->out_lock);
	free(f);
	return 0;
}

static void test_reset_values(void **state)
{
	struct fixture *f = *state;
	struct serial *s = f->s;

	assert_int_equal(rd(s, IER), 0x00);
	assert_int_equal(rd(s, IIR), 0x01);
	assert_int_equal(rd(s, LCR), 0x00);
	assert_int_equal(rd(s, MCR), 0x00);
	assert_int_equal(rd(s, LSR), 0x60);
	assert_int_equal(rd(s, MSR), 0xb0);	/* DCD, DSR, CTS; no deltas */
	assert_int_equal(rd(s, MSR), 0xb0);
	assert_int_equal(rd(s, SCR), 0x00);
	assert_int_equal(rd(s, RBR), 0x00);	/* empty */
	assert_int_equal(f->irq.calls, 0);
}

static void test_dlab_divisor(void **state)
{
	struct fixture *f = *state;
	struct serial *s = f->s;

	wr(s, IER, 0x05);
	wr(s, LCR, 0x83);	/* DLAB, 8N1 */
	assert_int_equal(rd(s, LCR), 0x83);
	wr(s, RBR, 0x01);	/* DLL: 115200 baud */
	wr(s, IER, 0x00);	/* DLM */
	assert_int_equal(rd(s, RBR), 0x01);
	assert_int_equal(rd(s, IER), 0x00);
	wr(s, IER, 0xab);
	assert_int_equal(rd(s, IER), 0xab);	/* DLM keeps all 8 bits */
	/* A 16-bit access covers DLL and DLM. */
	assert_int_equal(serial_bus_ops.read(s, 0, 2), 0xab01);
	serial_bus_ops.write(s, 0, 2, 0x0203);
	assert_int_equal(rd(s, RBR), 0x03);
	assert_int_equal(rd(s, IER), 0x02);
	assert_int_equal(f->out_len, 0);	/* the DLL write sent nothing */

	wr(s, LCR, 0x03);
	assert_int_equal(rd(s, IER), 0x05);	/* IER untouched by DLM writes */
	wr(s, RBR, 'A');
	assert_int_equal(f->out_len, 1);
	assert_int_equal(f->out[0], 'A');
	wr(s, LCR, 0x83);
	assert_int_equal(rd(s, RBR), 0x03);	/* divisor survived */
	wr(s, LCR, 0x03);
}

static void test_scratch_and_masks(void **state)
{
	struct fixture *f = *state;
	struct serial *s = f->s;

	wr(s, SCR, 0x5a);
	assert_int_equal(rd(s, SCR), 0x5a);
	wr(s, SCR, 0xa5);
	assert_int_equal(rd(s, SCR), 0xa5);
	wr(s, IER, 0xf0);
	assert_int_equal(rd(s, IER), 0x00);	/* only bits 0-3 exist */
	wr(s, MCR, 0xe0);
	assert_int_equal(rd(s, MCR), 0x00);	/* only bits 0-4 exist */
	/* LSR and MSR ignore writes. */
	wr(s, LSR, 0x00);
	assert_int_equal(rd(s, LSR), 0x60);
	wr(s, MSR, 0x00);
	assert_int_equal(rd(s, MSR), 0xb0);
	assert_int_equal(f->irq.calls, 0);
}

static void test_thre_interrupt(void **state)
{
	struct fixture *f = *state;
	struct serial *s = f->s;

	/* Enabling ETBEI with THR empty raises it. */
	wr(s, IER, 0x02);
	assert_int_equal(irq_level(&f->irq), 1);
	assert_int_equal(rd(s, IIR), 0x02);
	/* Reading IIR while THRE is the source acknowledges it. */
	assert_int_equal(irq_level(&f->irq), 0);
	assert_int_equal(rd(s, IIR), 0x01);
	assert_int_equal(rd(s, LSR), 0x60);	/* THR still empty */

	/* Rewriting the same IER does not re-arm; toggling does. */
	wr(s, IER, 0x02);
	assert_int_equal(rd(s, IIR), 0x01);
	wr(s, IER, 0x00);
	wr(s, IER, 0x02);
	assert_int_equal(irq_level(&f->irq), 1);
	assert_int_equal(rd(s, IIR), 0x02);

	/* A THR write re-raises it once the byte has left: a fresh edge. */
	int rises = f->irq.rises;
	wr(s, RBR, 'x');
	assert_int_equal(irq_level(&f->irq), 1);
	assert_int_equal(f->irq.rises, rises + 1);
	/* With the line already high a THR write pulses it (edge-triggered IOAPIC). */
	wr(s, RBR, 'y');
	assert_int_equal(f->irq.rises, rises + 2);
	assert_int_equal(irq_level(&f->irq), 1);
	/* Masking drops the line; IER=0 leaves nothing pending. */
	wr(s, IER, 0x00);
	assert_int_equal(irq_level(&f->irq), 0);
	assert_int_equal(rd(s, IIR), 0x01);
	assert_int_equal(f->out_len, 2);
	assert_memory_equal(f->out, "xy", 2);
}

static void test_rx_interrupt_no_fifo(void **state)
{
	struct fixture *f = *state;
	struct serial *s = f->s;

	assert_int_equal(serial_receive(s, (const uint8_t *)"ab", 2), 1);	/* 16450 mode: one byte */
	assert_int_equal(irq_level(&f->irq), 0);	/* masked */
	assert_int_equal(rd(s, LSR), 0x61);
	assert_int_equal(rd(s, IIR), 0x01);
	wr(s, IER, 0x01);
	assert_int_equal(irq_level(&f->irq), 1);
	assert_int_equal(rd(s, IIR), 0x04);
	assert_int_equal(rd(s, IIR), 0x04);	/* reading IIR does not clear RX */
	assert_int_equal(rd(s, RBR), 'a');
	assert_int_equal(irq_level(&f->irq), 0);
	assert_int_equal(rd(s, IIR), 0x01);
	assert_int_equal(rd(s, LSR), 0x60);
	assert_int_equal(rd(s, RBR), 'a');	/* empty RBR repeats the last byte */
	assert_int_equal(serial_receive(s, (const uint8_t *)"b", 1), 1);
	assert_int_equal(irq_level(&f->irq), 1);
	assert_int_equal(rd(s, RBR), 'b');
	assert_int_equal(irq_level(&f->irq), 0);
}

static void test_line_status_overrun(void **state)
{
	struct fixture *f = *state;
	struct serial *s = f->s;

	/* 16450 mode: the second byte overwrites the first and sets OE. */
	wr(s, MCR, 0x10);
	wr(s, RBR, '1');
	assert_int_equal(rd(s, LSR), 0x61);
	wr(s, IER, 0x04);	/* ELSI only */
	wr(s, RBR, '2');
	assert_int_equal(irq_level(&f->irq), 1);
	assert_int_equal(rd(s, IIR), 0x06);
	assert_int_equal(rd(s, LSR), 0x63);	/* DR | OE */
	assert_int_equal(irq_level(&f->irq), 0);
	assert_int_equal(rd(s, IIR), 0x01);
	assert_int_equal(rd(s, LSR), 0x61);	/* OE cleared by the read */
	assert_int_equal(rd(s, RBR), '2');
	assert_int_equal(f->out_len, 0);	/* loopback sends nothing out */

	/* FIFO mode: the 17th byte is lost, the first 16 are kept. */
	wr(s, FCR, 0x07);
	for (int i = 0; i < 17; i++)
		wr(s, RBR, (uint8_t)('a' + i));
	assert_int_equal(rd(s, IIR), 0xc6);
	assert_int_equal(rd(s, LSR), 0x63);
	for (int i = 0; i < 16; i++)
		assert_int_equal(rd(s, RBR), 'a' + i);
	assert_int_equal(rd(s, LSR), 0x60);
}

static void test_modem_status(void **state)
{
	struct fixture *f = *state;
	struct serial *s = f->s;

	wr(s, IER, 0x08);
	assert_int_equal(irq_level(&f->irq), 0);
	/* Loopback with all outputs low: CTS, DSR, DCD fall. */
	wr(s, MCR, 0x10);
	assert_int_equal(irq_level(&f->irq), 1);
	assert_int_equal(rd(s, IIR), 0x00);
	assert_int_equal(rd(s, MSR), 0x0b);	/* DDCD | DDSR | DCTS */
	assert_int_equal(irq_level(&f->irq), 0);
	assert_int_equal(rd(s, IIR), 0x01);
	assert_int_equal(rd(s, MSR), 0x00);

	/* Each output to its input: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
	static const struct { uint8_t mcr, msr; } loop[] = {
		{ 0x11, 0x22 },
		{ 0x12, 0x13 },		/* CTS up, DSR down */
		{ 0x14, 0x41 },		/* RI up: no TERI on the rising edge */
		{ 0x18, 0x8c },		/* RI fell: TERI; DCD up */
		{ 0x1f, 0xf3 },
	};
	for (size_t i = 0; i < sizeof(loop) / sizeof(loop[0]); i++) {
		wr(s, MCR, loop[i].mcr);
		assert_int_equal(rd(s, MSR), loop[i].msr);
	}
	/* Leaving loopback: the lines read as a present modem again. */
	wr(s, MCR, 0x00);
	assert_int_equal(rd(s, MSR), 0xb4);
	assert_int_equal(rd(s, MSR), 0xb0);
	assert_int_equal(irq_level(&f->irq), 0);
}

static void test_loopback_echo(void **state)
{
	struct fixture *f = *state;
	struct serial *s = f->s;

	wr(s, FCR, 0x01);
	wr(s, MCR, 0x10);
	wr(s, IER, 0x01);
	assert_int_equal(serial_receive(s, (const uint8_t *)"z", 1), 0);	/* line cut */
	wr(s, RBR, 'h');
	wr(s, RBR, 'i');
	assert_int_equal(rd(s, LSR), 0x61);
	assert_int_equal(rd(s, IIR), 0xc4);	/* trigger 1 */
	assert_int_equal(rd(s, RBR), 'h');
	assert_int_equal(rd(s, RBR), 'i');
	assert_int_equal(rd(s, IIR), 0xc1);
	assert_int_equal(f->out_len, 0);
	wr(s, MCR, 0x00);
	wr(s, RBR, '!');
	assert_int_equal(rd(s, LSR), 0x60);	/* went out, not in */
	assert_int_equal(f->out_len, 1);
	assert_int_equal(serial_receive(s, (const uint8_t *)"z", 1), 1);
}

static void test_fifo_and_trigger(void **state)
{
	struct fixture *f = *state;
	struct serial *s = f->s;
	uint8_t buf[20];

	for (int i = 0; i < 20; i++)
		buf[i] = (uint8_t)i;
	wr(s, FCR, 0x01);
	assert_int_equal(rd(s, IIR), 0xc1);
	assert_int_equal(serial_receive(s, buf, 20), 16);
	assert_int_equal(serial_receive(s, buf, 1), 0);	/* full */
	wr(s, IER, 0x01);
	assert_int_equal(rd(s, IIR), 0xc4);
	/* Clearing RX empties it and the interrupt goes. */
	wr(s, FCR, 0x03);
	assert_int_equal(rd(s, LSR), 0x60);
	assert_int_equal(rd(s, IIR), 0xc1);
	assert_int_equal(irq_level(&f->irq), 0);

	/* Below the trigger level: character timeout; at it: data available. */
	static const struct { uint8_t fcr; unsigned int level; } t[] = {
		{ 0x41, 4 }, { 0x81, 8 }, { 0xc1, 14 }, { 0x01, 1 },
	};
	for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		wr(s, FCR, t[k].fcr | 0x02);
		if (t[k].level > 1) {
			assert_int_equal(serial_receive(s, buf, t[k].level - 1), t[k].level - 1);
			assert_int_equal(rd(s, IIR), 0xcc);
			assert_int_equal(irq_level(&f->irq), 1);
		}
		assert_int_equal(serial_receive(s, buf, 1), 1);
		assert_int_equal(rd(s, IIR), 0xc4);
		/* Reading one byte drops below the trigger again (or empties it). */
		rd(s, RBR);
		assert_int_equal(rd(s, IIR), t[k].level > 1 ? 0xcc : 0xc1);
	}

	/* Each read below the trigger ends the timeout and it comes back: an edge per read. */
	wr(s, FCR, 0xc3);
	assert_int_equal(serial_receive(s, buf, 3), 3);
	int rises = f->irq.rises;
	assert_int_equal(rd(s, RBR), 0);
	assert_int_equal(rd(s, RBR), 1);
	assert_int_equal(f->irq.rises, rises + 2);
	assert_int_equal(rd(s, RBR), 2);
	assert_int_equal(irq_level(&f->irq), 0);
	assert_int_equal(f->irq.rises, rises + 2);

	/* Disabling the FIFOs empties them and IIR loses 0xC0. */
	assert_int_equal(serial_receive(s, buf, 5), 5);
	wr(s, FCR, 0x00);
	assert_int_equal(rd(s, IIR), 0x01);
	assert_int_equal(rd(s, LSR), 0x60);
	/* FCR bits other than 0 are not programmed with bit 0 clear. */
	wr(s, FCR, 0xc6);
	assert_int_equal(rd(s, IIR), 0x01);
	/* Re-enabling clears too, and bits 4-5 (64-byte mode) do not exist. */
	wr(s, FCR, 0xe7);
	assert_int_equal(rd(s, IIR), 0xc1);
}

static void test_priorities(void **state)
{
	struct fixture *f = *state;
	struct serial *s = f->s;

	/* Overrun in loopback (RLS), data (RDA), THRE and a modem delta, all at once. */
	wr(s, MCR, 0x10);
	wr(s, RBR, 'a');
	wr(s, RBR, 'b');
	wr(s, IER, 0x0f);
	assert_int_equal(irq_level(&f->irq), 1);
	assert_int_equal(rd(s, IIR), 0x06);
	assert_int_equal(rd(s, LSR), 0x63);
	assert_int_equal(rd(s, IIR), 0x04);
	assert_int_equal(rd(s, RBR), 'b');
	assert_int_equal(rd(s, IIR), 0x02);
	assert_int_equal(rd(s, IIR), 0x00);	/* THRE went with the read */
	assert_int_equal(rd(s, MSR) & 0x0f, 0x0b);
	assert_int_equal(rd(s, IIR), 0x01);
	assert_int_equal(irq_level(&f->irq), 0);
	/* Masked sources do not count: RX pending but only ETBEI enabled. */
	wr(s, RBR, 'c');
	wr(s, IER, 0x02);
	assert_int_equal(rd(s, IIR), 0x02);
}

/* What Linux 6.1's autoconfig() and autoconfig_16550a() do to find the type. */
static const char *linux_autoconfig(struct serial *s)
{
	uint8_t scratch, scratch2, scratch3, status1, status2, save_mcr, save_lcr, iersave;
	const char *type = "unknown";

	scratch = rd(s, IER);
	wr(s, IER, 0);
	scratch2 = rd(s, IER) & 0x0f;
	wr(s, IER, 0x0f);
	scratch3 = rd(s, IER) & 0x0f;
	wr(s, IER, scratch);
	if (scratch2 != 0 || scratch3 != 0x0f)
		return "none (IER test)";

	save_mcr = rd(s, MCR);
	save_lcr = rd(s, LCR);
	wr(s, MCR, 0x10 | 0x0a);
	status1 = rd(s, MSR) & 0xf0;
	wr(s, MCR, save_mcr);
	if (status1 != 0x90)
		return "none (loopback test)";

	wr(s, LCR, 0xbf);	/* UART_LCR_CONF_MODE_B */
	wr(s, 2, 0);		/* UART_EFR */
	wr(s, LCR, 0);
	wr(s, FCR, 0x01);
	switch (rd(s, IIR) >> 6) {
	case 0: type = "8250/16450"; break;
	case 1: type = "unknown"; break;
	case 2: type = "16550"; break;
	case 3:
		type = "16550A";
		/* EFR under DLAB (ST16C650V1) */
		wr(s, LCR, 0x80);
		if (rd(s, 2) == 0) {
			type = "EFR";
			break;
		}
		wr(s, LCR, 0xbf);
		if (rd(s, 2) == 0) {
			type = "EFRv2";
			break;
		}
		/* National Semiconductor SuperIO */
		wr(s, LCR, 0);
		status1 = rd(s, MCR);
		wr(s, LCR, 0xe0);
		status2 = rd(s, 2);
		if (!((status2 ^ status1) & 0x10)) {
			wr(s, LCR, 0);
			wr(s, MCR, status1 ^ 0x10);
			wr(s, LCR, 0xe0);
			status2 = rd(s, 2);
			wr(s, LCR, 0);
			wr(s, MCR, status1);
			if ((status2 ^ status1) & 0x10) {
				type = "NS16550A";
				break;
			}
		}
		/* TI16750: IIR bit 5 with 64-byte mode */
		wr(s, LCR, 0);
		wr(s, FCR, 0x01 | 0x20);
		status1 = rd(s, IIR) & (0x20 | 0xc0);
		wr(s, FCR, 0x01);
		wr(s, LCR, 0x80);
		wr(s, FCR, 0x01 | 0x20);
		status2 = rd(s, IIR) & (0x20 | 0xc0);
		wr(s, FCR, 0x01);
		wr(s, LCR, 0);
		if (status1 == 0xc0 && status2 == 0xe0) {
			type = "16750";
			break;
		}
		/* XScale: IER bit 6 (UUE) */
		iersave = rd(s, IER);
		wr(s, IER, iersave & ~0x40);
		if (!(rd(s, IER) & 0x40)) {
			wr(s, IER, iersave | 0x40);
			if (rd(s, IER) & 0x40) {
				type = "XScale";
				break;
			}
		}
		wr(s, IER, iersave);
		break;
	}
	wr(s, LCR, save_lcr);
	/* Reset: clear the FIFOs, drain RBR, IER off. */
	wr(s, MCR, save_mcr);
	wr(s, FCR, 0x01);
	wr(s, FCR, 0x07);
	wr(s, FCR, 0);
	rd(s, RBR);
	wr(s, IER, 0);
	return type;
}

static void test_linux_autoconfig(void **state)
{
	struct fixture *f = *state;
	struct serial *s = f->s;
	uint8_t iir1, iir, lsr;

	assert_string_equal(linux_autoconfig(s), "16550A");

	/* The FIFO probe of older drivers: FCR 0xE7, then IIR bits 7:6. */
	wr(s, FCR, 0xe7);
	iir = rd(s, IIR);
	assert_int_equal(iir & 0xc0, 0xc0);
	assert_int_equal(iir & 0x30, 0);	/* not a 16750 */
	wr(s, FCR, 0);

	/* serial8250_do_startup(): the UART_BUG_THRE test must pass... */
	wr(s, FCR, 0x81);	/* FIFO on, trigger 8, as Linux sets it */
	wr(s, MCR, 0x0b);	/* DTR | RTS | OUT2 */
	rd(s, LSR);
	rd(s, RBR);
	rd(s, IIR);
	rd(s, MSR);
	assert_int_equal(rd(s, LSR) & 0x20, 0x20);
	wr(s, IER, 0x02);
	iir1 = rd(s, IIR);
	wr(s, IER, 0);
	wr(s, IER, 0x02);
	iir = rd(s, IIR);
	wr(s, IER, 0);
	assert_false(iir1 & 0x01);
	assert_false(iir & 0x01);	/* re-asserted: no UART_BUG_THRE */
	/* ...and so must the UART_BUG_TXEN test. */
	wr(s, IER, 0x02);
	lsr = rd(s, LSR);
	iir = rd(s, IIR);
	wr(s, IER, 0);
	assert_true(lsr & 0x40);
	assert_false(iir & 0x01);
	assert_int_equal(irq_level(&f->irq), 0);
}

/* ---- Behind a real console ---- */

struct pipe_fixture {
	struct irq_line irq;
	struct console *con;
	struct serial *s;
	int out[2];	/* guest output: con writes out[1], the test reads out[0] */
	int in[2];	/* guest input: the test writes in[1] */
};

static void pipe_fixture_open(struct pipe_fixture *p, bool with_input, int pipe_size)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->irq.lock, NULL);
	assert_int_equal(pipe2(p->out, O_CLOEXEC), 0);
	if (pipe_size)
		assert_true(fcntl(p->out[1], F_SETPIPE_SZ, pipe_size) >= pipe_size);
	p->in[0] = p->in[1] = -1;
	if (with_input)
		assert_int_equal(pipe2(p->in, O_CLOEXEC), 0);
	p->con = console_open_fds(CONSOLE_STDIO, p->in[0], p->out[1]);
	assert_non_null(p->con);
	p->s = serial_create(p->con, fake_irq, &p->irq);
	assert_non_null(p->s);
	assert_int_equal(console_start(p->con), 0);
}

static void pipe_fixture_close(struct pipe_fixture *p)
{
	console_stop(p->con, 200);
	serial_destroy(p->s);
	console_close(p->con);
	for (int i = 0; i < 2; i++) {
		close(p->out[i]);
		if (p->in[i] >= 0)
			close(p->in[i]);
	}
	assert_int_equal(p->irq.non_changes, 0);
	pthread_mutex_destroy(&p->irq.lock);
}

static size_t drain_fd(int fd)
{
	uint8_t buf[4096];
	size_t total = 0;
	ssize_t n;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (poll(&p, 1, 0) > 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	return total;
}

static void test_thr_backpressure(void **state)
{
	struct pipe_fixture p;
	size_t sent = 0;

	pipe_fixture_open(&p, false, 4096);	/* nobody reads the pipe yet */
	wr(p.s, IER, 0x02);
	assert_int_equal(rd(p.s, IIR), 0x02);
	/* A guest that waits for THRE: fill the console until THRE stays clear. */
	double t0 = helper_now_ms();
	while (rd(p.s, LSR) & 0x20) {
		wr(p.s, RBR, (uint8_t)sent);
		sent++;
		assert_true(sent < (1u << 20));
	}
	assert_true(sent >= 64 * 1024);
	assert_true(helper_now_ms() - t0 < 10000);
	assert_int_equal(rd(p.s, LSR) & 0x60, 0);	/* THRE and TEMT both clear */
	assert_int_equal(rd(p.s, IIR), 0x01);	/* and no THRE interrupt */
	assert_int_equal(irq_level(&p.irq), 0);
	assert_int_equal(console_dropped(p.con), 0);

	/* A guest that does not wait loses bytes, and they are counted. */
	for (int i = 0; i < 10; i++)
		wr(p.s, RBR, 'X');
	assert_int_equal(console_dropped(p.con), 10);
	assert_int_equal(rd(p.s, LSR) & 0x20, 0);

	/* The host catches up: room comes back, THRE and its interrupt with it. */
	size_t got = 0;
	t0 = helper_now_ms();
	while (irq_level(&p.irq) == 0) {
		got += drain_fd(p.out[0]);
		assert_true(helper_now_ms() - t0 < 5000);
		usleep(1000);
	}
	assert_int_equal(rd(p.s, IIR), 0x02);
	assert_int_equal(rd(p.s, LSR) & 0x60, 0x60);
	/* Everything queued arrives; the 10 dropped bytes do not. */
	t0 = helper_now_ms();
	while (got < sent) {
		got += drain_fd(p.out[0]);
		assert_true(helper_now_ms() - t0 < 5000);
		usleep(1000);
	}
	assert_int_equal(got, sent);
	pipe_fixture_close(&p);
}

struct reader_arg {
	int fd;
	size_t expect;
	size_t got;
	bool in_order;
};

/* A slow reader: the guest must wait for it, not lose bytes. */
static void *slow_reader(void *opaque)
{
	struct reader_arg *a = opaque;
	uint8_t buf[512];

	a->in_order = true;
	while (a->got < a->expect) {
		ssize_t n = read(a->fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != (uint8_t)((a->got + (size_t)i) % 251))
				a->in_order = false;
		a->got += (size_t)n;
		if (a->got % 8192 < 512)
			usleep(2000);
	}
	return NULL;
}

static void test_thr_waiting_guest_loses_nothing(void **state)
{
	struct pipe_fixture p;
	struct reader_arg a = { .expect = 300 * 1024 };
	pthread_t t;

	pipe_fixture_open(&p, false, 4096);
	a.fd = p.out[0];
	assert_int_equal(pthread_create(&t, NULL, slow_reader, &a), 0);
	for (size_t i = 0; i < a.expect; i++) {
		double t0 = helper_now_ms();
		while (!(rd(p.s, LSR) & 0x20)) {
			assert_true(helper_now_ms() - t0 < 5000);
			sched_yield();
		}
		wr(p.s, RBR, (uint8_t)(i % 251));
	}
	pthread_join(t, NULL);
	assert_int_equal(a.got, a.expect);
	assert_true(a.in_order);
	assert_int_equal(console_dropped(p.con), 0);
	pipe_fixture_close(&p);
}

static void test_input_through_console(void **state)
{
	struct pipe_fixture p;
	uint8_t msg[40], got[40];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)('A' + i);
	pipe_fixture_open(&p, true, 0);
	wr(p.s, FCR, 0x01);
	wr(p.s, IER, 0x01);
	/* Loopback cuts the line; what is typed meanwhile waits. */
	wr(p.s, MCR, 0x10);
	assert_int_equal(write(p.in[1], msg, sizeof(msg)), sizeof(msg));
	usleep(50 * 1000);
	assert_int_equal(rd(p.s, LSR) & 0x01, 0);
	wr(p.s, MCR, 0x00);

	/* The FIFO takes 16 at a time; draining it asks the console for more. */
	double t0 = helper_now_ms();
	while (n < sizeof(msg)) {
		assert_true(helper_now_ms() - t0 < 5000);
		if (!irq_level(&p.irq)) {
			usleep(1000);
			continue;
		}
		uint8_t iir = rd(p.s, IIR);
		assert_true(iir == 0xc4 || iir == 0xcc);
		while (rd(p.s, LSR) & 0x01) {
			assert_true(n < sizeof(msg));
			got[n++] = rd(p.s, RBR);
		}
	}
	assert_memory_equal(got, msg, sizeof(msg));
	/* EOF on input: the UART simply gets nothing more. */
	close(p.in[1]);
	p.in[1] = -1;
	usleep(20 * 1000);
	assert_int_equal(rd(p.s, LSR) & 0x01, 0);
	pipe_fixture_close(&p);
}

/* vCPU threads hammer registers while the console threads feed and drain it (for TSan). */
struct hammer_arg {
	struct serial *s;
	int iters;
};

static void *hammer(void *opaque)
{
	struct hammer_arg *a = opaque;

	for (int i = 0; i < a->iters; i++) {
		rd(a->s, LSR);
		rd(a->s, IIR);
		if (rd(a->s, LSR) & 0x01)
			rd(a->s, RBR);
		wr(a->s, RBR, '.');
		wr(a->s, IER, (uint8_t)(i & 0x0f));
	}
	return NULL;
}

static void test_concurrent_access(void **state)
{
	struct pipe_fixture p;
	struct hammer_arg a;
	pthread_t t[2];
	uint8_t junk[64];

	memset(junk, 'k', sizeof(junk));
	pipe_fixture_open(&p, true, 4096);
	a.s = p.s;
	a.iters = 20000;
	wr(p.s, FCR, 0x01);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &a), 0);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(write(p.in[1], junk, sizeof(junk)), sizeof(junk));
		drain_fd(p.out[0]);
		usleep(500);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	drain_fd(p.out[0]);
	pipe_fixture_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reset_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dlab_divisor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scratch_and_masks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_interrupt_no_fifo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_status_overrun, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modem_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_and_trigger, setup, teardown),
		cmocka_unit_test_setup_teardown(test_priorities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_linux_autoconfig, setup, teardown),
		cmocka_unit_test(test_thr_backpressure),
		cmocka_unit_test(test_thr_waiting_guest_loses_nothing),
		cmocka_unit_test(test_input_through_console),
		cmocka_unit_test(test_concurrent_access),
	};

	signal(SIGPIPE, SIG_IGN);	/* as bootvm run does */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
