/*
 * libdevvm SDK: the printf subset of devvm_log(), freestanding.
 *
 * Conversions %d %i %u %x %X %c %s %p %%, length modifiers l, ll and z,
 * a field width (digits or *), the flags '0' and '-'.  Anything else is
 * copied through as text.  Output is cut at @size - 1 bytes and always
 * NUL-terminated when @size > 0; the return value is the length the
 * whole output would have, as with vsnprintf().
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "sdk-impl.h"

struct fmt_out {
    char *buf;
    size_t size;
    size_t len;         /* would-be length so far */
};

static void fmt_putc(struct fmt_out *o, char c)
{
    if (o->len + 1 < o->size) {
        o->buf[o->len] = c;
    }
    o->len++;
}

static void fmt_pad(struct fmt_out *o, char c, int n)
{
    while (n-- > 0) {
        fmt_putc(o, c);
    }
}

/*
 * @s of @n bytes in a field of @width, padded with @pad on the left or
 * (@left) with spaces on the right.  A '-' sign goes before zeros.
 */
static void fmt_field(struct fmt_out *o, const char *s, int n, int width,
                      int left, char pad)
{
    int i = 0;

    if (!left && pad == '0' && n > 0 && s[0] == '-') {
        fmt_putc(o, '-');
        i = 1;
    }
    if (!left) {
        fmt_pad(o, pad, width - n);
    }
    for (; i < n; i++) {
        fmt_putc(o, s[i]);
    }
    if (left) {
        fmt_pad(o, ' ', width - n);
    }
}

/* (no strlen: the core calls nothing outside the compiler's mem*) */
static int fmt_strlen(const char *s)
{
    int n = 0;

    while (s[n] && n < 0x7fffffff) {
        n++;
    }
    return n;
}

/* Digits of @v in base @base, ending at @end; returns the first. */
static char *fmt_digits(char *end, uint64_t v, unsigned base, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char *p = end;

    do {
        *--p = digits[v % base];
        v /= base;
    } while (v);
    return p;
}

int devvm_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct fmt_out o = { buf, size, 0 };
    char tmp[24];
    const char *p;

    for (p = fmt; *p; p++) {
        int left = 0, width = 0, lng = 0;
        char pad = ' ';
        uint64_t u;
        int64_t s;
        const char *str;
        char *d;

        if (*p != '%') {
            fmt_putc(&o, *p);
            continue;
        }
        p++;
        for (;; p++) {
            if (*p == '-') {
                left = 1;
            } else if (*p == '0') {
                pad = '0';
            } else {
                break;
            }
        }
        if (*p == '*') {
            width = va_arg(ap, int);
            if (width < 0) {
                left = 1;
                width = -width;
            }
            p++;
        }
        while (*p >= '0' && *p <= '9') {
            if (width < 1000) {
                width = width * 10 + (*p - '0');
            }
            p++;
        }
        if (*p == 'l') {
            lng = 1;
            p++;
            if (*p == 'l') {
                lng = 2;
                p++;
            }
        } else if (*p == 'z') {
            lng = 3;
            p++;
        }
        if (left) {
            pad = ' ';
        }

        switch (*p) {
        case 'd':
        case 'i':
            s = lng == 2 ? va_arg(ap, long long) :
                lng == 1 ? va_arg(ap, long) :
                lng == 3 ? (int64_t)va_arg(ap, size_t) : va_arg(ap, int);
            u = s < 0 ? -(uint64_t)s : (uint64_t)s;
            d = fmt_digits(tmp + sizeof(tmp), u, 10, 0);
            if (s < 0) {
                *--d = '-';
            }
            fmt_field(&o, d, (int)(tmp + sizeof(tmp) - d), width, left, pad);
            break;
        case 'u':
        case 'x':
        case 'X':
            u = lng == 2 ? va_arg(ap, unsigned long long) :
                lng == 1 ? va_arg(ap, unsigned long) :
                lng == 3 ? va_arg(ap, size_t) : va_arg(ap, unsigned int);
            d = fmt_digits(tmp + sizeof(tmp), u, *p == 'u' ? 10 : 16,
                           *p == 'X');
            fmt_field(&o, d, (int)(tmp + sizeof(tmp) - d), width, left, pad);
            break;
        case 'p':
            u = (uint64_t)(uintptr_t)va_arg(ap, void *);
            d = fmt_digits(tmp + sizeof(tmp), u, 16, 0);
            *--d = 'x';
            *--d = '0';
            fmt_field(&o, d, (int)(tmp + sizeof(tmp) - d), width, left, ' ');
            break;
        case 'c':
            tmp[0] = (char)va_arg(ap, int);
            fmt_field(&o, tmp, 1, width, left, ' ');
            break;
        case 's':
            str = va_arg(ap, const char *);
            if (!str) {
                str = "(null)";
            }
            fmt_field(&o, str, fmt_strlen(str), width, left, ' ');
            break;
        case '%':
            fmt_putc(&o, '%');
            break;
        case '\0':
            /* a lone '%' at the end */
            fmt_putc(&o, '%');
            p--;
            break;
        default:
            /* not ours: show it as it was written */
            fmt_putc(&o, '%');
            fmt_putc(&o, *p);
            break;
        }
    }
    if (size) {
        buf[o.len < size ? o.len : size - 1] = '\0';
    }
    return (int)o.len;
}
