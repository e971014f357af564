/*
 * devvm runtime: serial console (16550 COM1, polled) and log lines.
 *
 * Every line starts with "devvm-rt: " so that a test or the gateway can
 * pick the runtime's lines out of a serial log.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "rt.h"
#include "sdk-impl.h"

#define COM1            0x3f8
#define COM1_IER        (COM1 + 1)
#define COM1_FCR        (COM1 + 2)
#define COM1_LCR        (COM1 + 3)
#define COM1_MCR        (COM1 + 4)
#define COM1_LSR        (COM1 + 5)
#define LSR_THRE        0x20
#define LCR_DLAB        0x80
#define LCR_8N1         0x03

#define LOG_LINE_MAX    256

int rt_verbose;

void rt_console_init(void)
{
    /* 115200 8N1, FIFO on, no interrupts: QEMU ignores the speed */
    outb(COM1_IER, 0);
    outb(COM1_LCR, LCR_DLAB);
    outb(COM1, 1);
    outb(COM1_IER, 0);
    outb(COM1_LCR, LCR_8N1);
    outb(COM1_FCR, 0x07);
    outb(COM1_MCR, 0x03);
}

static void serial_putc(char c)
{
    while (!(inb(COM1_LSR) & LSR_THRE)) {
        cpu_relax();
    }
    outb(COM1, c);
}

void rt_serial_write(const char *s, size_t len)
{
    while (len--) {
        serial_putc(*s++);
    }
}

static const char prefix[] = "devvm-rt: ";

static int format(char *buf, size_t size, const char *fmt, va_list ap)
{
    int n = devvm_vsnprintf(buf, size, fmt, ap);

    if (n < 0) {
        return 0;
    }
    return n < (int)size ? n : (int)size - 1;
}

static void vlog(const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    int n = format(line, sizeof(line), fmt, ap);

    rt_serial_write(prefix, sizeof(prefix) - 1);
    rt_serial_write(line, n);
    serial_putc('\n');
}

void rt_log(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void rt_debug(const char *fmt, ...)
{
    va_list ap;

    if (!rt_verbose) {
        return;
    }
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

static int head(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = format(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void rt_log_text(const char *name, unsigned instance, const char *text,
                 size_t len)
{
    char h[64];
    int n = head(h, sizeof(h), "%s[%u]: ", name, instance);

    rt_serial_write(prefix, sizeof(prefix) - 1);
    rt_serial_write(h, n);
    rt_serial_write(text, len);
    serial_putc('\n');
}
