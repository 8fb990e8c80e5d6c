/*
 * 16550A UART.
 *
 * Timing: there is no baud clock. A byte written to THR leaves at once (into
 * the console's output buffer, or into the RX FIFO in loopback), and the
 * line is idle as soon as a byte has arrived, so the character-timeout
 * indication (IIR 0x0C) stands whenever the RX FIFO holds at least one byte
 * but fewer than its trigger level.
 *
 * Output backpressure: THRE/TEMT read as set only while the console can take
 * a byte. When it cannot, the console calls serial_room() once room comes
 * back, which sets THRE again and raises its interrupt. Bytes written while
 * THRE is clear are handed to the console anyway, which drops and counts them.
 *
 * Locking: one mutex per UART, taken by vCPU threads (register access), the
 * console's input thread (serial_receive) and its writer thread
 * (serial_room). Lock order: serial lock, then console lock. The console
 * calls receive() and the room handler without holding its own lock, so the
 * UART may call console_write(), console_write_room() and
 * console_input_ready() with its lock held. set_irq() is called with the lock
 * held, which keeps level changes in order; it must not call into the UART.
 */
#include "devices/serial.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "backends/console.h"
#include "util/log.h"

/* Register offsets; with LCR.DLAB set, 0 and 1 are the divisor latch. */
#define UART_RBR	0	/* read: receive buffer; write: THR */
#define UART_IER	1
#define UART_IIR	2	/* read: IIR; write: FCR */
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define UART_MSR	6
#define UART_SCR	7

#define IER_ERBFI	0x01	/* received data available */
#define IER_ETBEI	0x02	/* THR empty */
#define IER_ELSI	0x04	/* receiver line status */
#define IER_EDSSI	0x08	/* modem status */
#define IER_MASK	0x0f

#define IIR_NO_INT	0x01
#define IIR_MSI		0x00
#define IIR_THRI	0x02
#define IIR_RDI		0x04
#define IIR_RLSI	0x06
#define IIR_CTI		0x0c
#define IIR_ID_MASK	0x0f
#define IIR_FIFO	0xc0

#define FCR_ENABLE	0x01
#define FCR_CLEAR_RX	0x02
#define FCR_CLEAR_TX	0x04
#define FCR_TRIGGER	0xc0

#define LCR_DLAB	0x80

#define MCR_DTR		0x01
#define MCR_RTS		0x02
#define MCR_OUT1	0x04
#define MCR_OUT2	0x08
#define MCR_LOOP	0x10
#define MCR_MASK	0x1f

#define LSR_DR		0x01
#define LSR_OE		0x02
#define LSR_THRE	0x20
#define LSR_TEMT	0x40

#define MSR_DCTS	0x01
#define MSR_DDSR	0x02
#define MSR_TERI	0x04
#define MSR_DDCD	0x08
#define MSR_DELTA	0x0f
#define MSR_CTS		0x10
#define MSR_DSR		0x20
#define MSR_RI		0x40
#define MSR_DCD		0x80

#define SERIAL_FIFO_SIZE 16

struct serial {
	pthread_mutex_t lock;
	struct console *con;		/* NULL: output discarded, no input */
	void (*set_irq)(void *irq_opaque, int level);
	void *irq_opaque;
	int irq_level;			/* as last given to set_irq (starts low) */

	uint8_t ier, lcr, mcr, msr, scr, dll, dlm;
	uint8_t fcr;			/* FCR_ENABLE and the trigger bits */
	bool oe;			/* LSR.OE, cleared by reading LSR */
	bool thr_ipending;		/* THR-empty interrupt condition */
	bool tx_full;			/* the console had no room after the last byte */
	bool rx_refused;		/* console input was turned away: say when there is room */
	bool cti_masked;		/* see serial_rbr_read() */

	uint8_t rx[SERIAL_FIFO_SIZE];	/* without FIFO mode only one byte is used */
	unsigned int rx_head, rx_count;
	uint8_t rbr;			/* last byte read; what an empty RBR returns */
};

static bool serial_fifo_on(const struct serial *s)
{
	return s->fcr & FCR_ENABLE;
}

static bool serial_loop(const struct serial *s)
{
	return s->mcr & MCR_LOOP;
}

static unsigned int serial_trigger(const struct serial *s)
{
	static const unsigned int level[4] = { 1, 4, 8, 14 };

	return level[(s->fcr & FCR_TRIGGER) >> 6];
}

/* THR and the transmitter are empty: the next byte can leave at once. */
static bool serial_thr_empty(const struct serial *s)
{
	return serial_loop(s) || !s->tx_full;
}

/* Room came back in the console (the room handler may not have run yet). */
static void serial_tx_poll(struct serial *s)
{
	if (s->tx_full && console_write_room(s->con) > 0) {
		s->tx_full = false;
		s->thr_ipending = true;
	}
}

static uint8_t serial_iir(const struct serial *s)
{
	uint8_t id = IIR_NO_INT;
	bool below_trigger = serial_fifo_on(s) && s->rx_count < serial_trigger(s);

	if ((s->ier & IER_ELSI) && s->oe)
		id = IIR_RLSI;
	else if ((s->ier & IER_ERBFI) && s->rx_count && !(below_trigger && s->cti_masked))
		id = below_trigger ? IIR_CTI : IIR_RDI;
	else if ((s->ier & IER_ETBEI) && s->thr_ipending)
		id = IIR_THRI;
	else if ((s->ier & IER_EDSSI) && (s->msr & MSR_DELTA))
		id = IIR_MSI;
	return id | (serial_fifo_on(s) ? IIR_FIFO : 0);
}

/* Not gated on MCR.OUT2: guests that never set it still get interrupts (as QEMU). */
static void serial_update_irq(struct serial *s)
{
	int level = !(serial_iir(s) & IIR_NO_INT);

	if (level != s->irq_level) {
		s->irq_level = level;
		if (s->set_irq)
			s->set_irq(s->irq_opaque, level);
	}
}

/* Space for input from the console; none in loopback, where the line is cut. */
static unsigned int serial_rx_room(const struct serial *s)
{
	if (serial_loop(s))
		return 0;
	if (serial_fifo_on(s))
		return SERIAL_FIFO_SIZE - s->rx_count;
	return s->rx_count ? 0 : 1;
}

/* A byte completes in the receiver; no room is an overrun. */
static void serial_rx_put(struct serial *s, uint8_t b)
{
	if (!serial_fifo_on(s)) {
		/* 16450 mode: the holding register is overwritten. */
		if (s->rx_count)
			s->oe = true;
		s->rx[s->rx_head] = b;
		s->rx_count = 1;
		return;
	}
	if (s->rx_count == SERIAL_FIFO_SIZE) {
		s->oe = true;	/* the shift register's byte is lost, the FIFO kept */
		return;
	}
	s->rx[(s->rx_head + s->rx_count) % SERIAL_FIFO_SIZE] = b;
	s->rx_count++;
}

static void serial_rx_clear(struct serial *s)
{
	s->rx_head = 0;
	s->rx_count = 0;
}

/* Input was turned away before and the guest has drained the FIFO: ask for more. */
static void serial_rx_notify(struct serial *s)
{
	if (s->rx_refused && s->rx_count == 0 && !serial_loop(s)) {
		s->rx_refused = false;
		if (s->con)
			console_input_ready(s->con);
	}
}

static void serial_update_msr(struct serial *s)
{
	uint8_t old = s->msr & ~MSR_DELTA, lines, delta = 0;

	if (serial_loop(s))
		lines = (s->mcr & MCR_DTR ? MSR_DSR : 0) | (s->mcr & MCR_RTS ? MSR_CTS : 0) |
			(s->mcr & MCR_OUT1 ? MSR_RI : 0) | (s->mcr & MCR_OUT2 ? MSR_DCD : 0);
	else
		lines = MSR_DCD | MSR_DSR | MSR_CTS;	/* a modem that is always there */

	if ((lines ^ old) & MSR_CTS)
		delta |= MSR_DCTS;
	if ((lines ^ old) & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old & MSR_RI) && !(lines & MSR_RI))
		delta |= MSR_TERI;
	if ((lines ^ old) & MSR_DCD)
		delta |= MSR_DDCD;
	s->msr = lines | (s->msr & MSR_DELTA) | delta;
}

static uint8_t serial_rbr_read(struct serial *s)
{
	if (!s->rx_count)
		return s->rbr;
	s->rbr = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_SIZE;
	s->rx_count--;
	if (serial_fifo_on(s) && s->rx_count && s->rx_count < serial_trigger(s)) {
		/*
		 * Reading ends the timeout indication; a real UART raises it
		 * again four character times later. The line is idle already,
		 * so it comes back at once, as a fresh edge for edge-triggered
		 * interrupt controllers.
		 */
		s->cti_masked = true;
		serial_update_irq(s);
		s->cti_masked = false;
	}
	serial_rx_notify(s);
	serial_update_irq(s);
	return s->rbr;
}

static void serial_thr_write(struct serial *s, uint8_t b)
{
	/* Writing THR clears the THRE interrupt; it comes back as the byte leaves. */
	s->thr_ipending = false;
	serial_update_irq(s);
	if (serial_loop(s)) {
		serial_rx_put(s, b);
	} else if (s->con) {
		console_write(s->con, &b, 1);	/* drops and counts it when full */
		s->tx_full = console_write_room(s->con) == 0;
	}
	s->thr_ipending = serial_thr_empty(s);
	serial_update_irq(s);
}

static void serial_ier_write(struct serial *s, uint8_t v)
{
	uint8_t changed = (s->ier ^ v) & IER_MASK;

	s->ier = v & IER_MASK;
	/* Enabling ETBEI with THR empty raises it even if an IIR read had cleared it. */
	if (changed & IER_ETBEI) {
		serial_tx_poll(s);
		s->thr_ipending = (s->ier & IER_ETBEI) && serial_thr_empty(s);
	}
	serial_update_irq(s);
}

static void serial_fcr_write(struct serial *s, uint8_t v)
{
	/* Bits 1-7 are programmed only together with bit 0 set. */
	if (!(v & FCR_ENABLE)) {
		if (serial_fifo_on(s)) {
			serial_rx_clear(s);
			if (serial_thr_empty(s))
				s->thr_ipending = true;
		}
		s->fcr = 0;
	} else {
		if (!serial_fifo_on(s))
			v |= FCR_CLEAR_RX | FCR_CLEAR_TX;	/* mode change empties both */
		if (v & FCR_CLEAR_RX)
			serial_rx_clear(s);
		if ((v & FCR_CLEAR_TX) && serial_thr_empty(s))
			s->thr_ipending = true;
		s->fcr = v & (FCR_ENABLE | FCR_TRIGGER);
	}
	serial_rx_notify(s);
	serial_update_irq(s);
}

static void serial_mcr_write(struct serial *s, uint8_t v)
{
	bool was_loop = serial_loop(s);

	s->mcr = v & MCR_MASK;
	serial_update_msr(s);
	if (was_loop && !serial_loop(s))
		serial_rx_notify(s);
	serial_update_irq(s);
}

static uint8_t serial_read_reg(struct serial *s, unsigned int reg)
{
	uint8_t v;

	switch (reg) {
	case UART_RBR:
		return s->lcr & LCR_DLAB ? s->dll : serial_rbr_read(s);
	case UART_IER:
		return s->lcr & LCR_DLAB ? s->dlm : s->ier;
	case UART_IIR:
		serial_tx_poll(s);
		v = serial_iir(s);
		if ((v & IIR_ID_MASK) == IIR_THRI) {
			s->thr_ipending = false;	/* reading IIR acknowledges THRE */
			serial_update_irq(s);
		}
		return v;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		serial_tx_poll(s);
		v = (s->rx_count ? LSR_DR : 0) | (s->oe ? LSR_OE : 0) |
		    (serial_thr_empty(s) ? LSR_THRE | LSR_TEMT : 0);
		s->oe = false;
		serial_update_irq(s);
		return v;
	case UART_MSR:
		v = s->msr;
		s->msr &= ~MSR_DELTA;
		serial_update_irq(s);
		return v;
	default:
		return s->scr;
	}
}

static void serial_write_reg(struct serial *s, unsigned int reg, uint8_t v)
{
	switch (reg) {
	case UART_RBR:
		if (s->lcr & LCR_DLAB)
			s->dll = v;
		else
			serial_thr_write(s, v);
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB)
			s->dlm = v;
		else
			serial_ier_write(s, v);
		break;
	case UART_IIR:
		serial_fcr_write(s, v);
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		serial_mcr_write(s, v);
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default:
		break;	/* LSR and MSR writes are factory-test only */
	}
}

/* Wider accesses act on consecutive registers, a byte each (as QEMU). */
static uint64_t serial_read(void *dev, uint64_t offset, unsigned int size)
{
	struct serial *s = dev;
	uint64_t v = 0;

	pthread_mutex_lock(&s->lock);
	for (unsigned int i = 0; i < size && i < 8; i++)
		v |= (uint64_t)serial_read_reg(s, (unsigned int)(offset + i) & 7) << (8 * i);
	pthread_mutex_unlock(&s->lock);
	return v;
}

static void serial_write(void *dev, uint64_t offset, unsigned int size, uint64_t value)
{
	struct serial *s = dev;

	pthread_mutex_lock(&s->lock);
	for (unsigned int i = 0; i < size && i < 8; i++)
		serial_write_reg(s, (unsigned int)(offset + i) & 7, (uint8_t)(value >> (8 * i)));
	pthread_mutex_unlock(&s->lock);
}

const struct bus_ops serial_bus_ops = {
	.read = serial_read,
	.write = serial_write,
};

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = serial_rx_room(s);
	if (n > len)
		n = len;
	for (size_t i = 0; i < n; i++)
		serial_rx_put(s, buf[i]);
	if (n < len)
		s->rx_refused = true;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Console input thread: take what fits; the rest waits for console_input_ready(). */
static size_t serial_console_receive(void *opaque, const uint8_t *buf, size_t len)
{
	return serial_receive(opaque, buf, len);
}

/* Console writer thread: output room came back after THRE had been held clear. */
static void serial_room(void *opaque)
{
	struct serial *s = opaque;

	pthread_mutex_lock(&s->lock);
	serial_tx_poll(s);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

/* Power-on register state; the caller holds the lock or owns s alone. */
static void serial_power_on(struct serial *s)
{
	s->ier = s->lcr = s->mcr = s->msr = s->scr = s->dlm = s->fcr = 0;
	s->oe = s->tx_full = s->rx_refused = s->cti_masked = false;
	s->rx_head = s->rx_count = 0;
	s->rbr = 0;
	s->dll = 0x0c;		/* 9600 baud from the 1.8432 MHz clock */
	s->thr_ipending = false;	/* nothing has left THR yet: IIR reads 0x01 */
	serial_update_msr(s);
	s->msr &= ~MSR_DELTA;	/* the lines were up from the start */
}

struct serial *serial_create(struct console *con,
			     void (*set_irq)(void *irq_opaque, int level), void *irq_opaque)
{
	struct serial *s = calloc(1, sizeof(*s));

	if (!s) {
		log_error("serial: out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->con = con;
	s->set_irq = set_irq;
	s->irq_opaque = irq_opaque;
	serial_power_on(s);
	if (con) {
		console_set_input(con, serial_console_receive, s);
		console_set_room_handler(con, serial_room, s);
	}
	return s;
}

/* The console must be stopped (no callbacks in flight). */
void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	if (s->con) {
		console_set_input(s->con, NULL, NULL);
		console_set_room_handler(s->con, NULL, NULL);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void serial_reset(void *dev)
{
	struct serial *s = dev;

	pthread_mutex_lock(&s->lock);
	serial_power_on(s);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_destroy_dev(void *dev)
{
	serial_destroy(dev);
}

const struct device_ops serial_device_ops = {
	.kind = "serial",
	.reset = serial_reset,
	.destroy = serial_destroy_dev,
};

void serial_aml(struct aml *a, const char *name, unsigned int uid, uint16_t base,
		unsigned int irq)
{
	uint8_t res_buf[32];
	struct aml res;
	size_t dev;

	dev = aml_device_begin(a, name);
	aml_name_eisaid(a, "_HID", "PNP0501");
	aml_name_integer(a, "_UID", uid);
	aml_method_return_integer(a, "_STA", AML_STA_ALL);
	aml_init(&res, res_buf, sizeof(res_buf));
	aml_res_io(&res, true, base, base, 0x00, SERIAL_PORT_LEN);
	aml_res_irq_noflags(&res, (uint16_t)(1U << irq));
	aml_res_end(&res);
	aml_name(a, "_CRS");
	aml_buffer(a, res.buf, res.len);
	a->overflow |= res.overflow;
	aml_end(a, dev);
}
