/*
 * Numbers with units for config values: sizes ("25M") and durations ("5m").
 * Digits only before the unit, so "-1", " 5" and "0x10" are refused instead
 * of being read the way strtoull would.
 */
#include "config/config.h"
#include "config/config_parse.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

int
config_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Splits "25M" into 25 and 'M'; unit is '\0' when absent. */
static int
split_unit(const char *s, uint64_t *n, char *unit)
{
    char digits[24];
    size_t len = 0;

    while (s[len] >= '0' && s[len] <= '9')
        len++;
    if (len == 0 || len >= sizeof(digits) || (s[len] && s[len + 1]))
        return -1;
    for (size_t i = 0; i < len; i++)
        digits[i] = s[i];
    digits[len] = '\0';
    *unit = s[len];
    return config_parse_u64(digits, n);
}

static int
scale(uint64_t n, uint64_t mul, uint64_t max, uint64_t *out)
{
    if (n > max / mul)
        return -1;
    *out = n * mul;
    return 0;
}

int
config_parse_size(const char *s, uint64_t *out)
{
    uint64_t n, mul;
    char unit;

    if (s == NULL || split_unit(s, &n, &unit) < 0)
        return -1;
    switch (unit) {
    case '\0':
        mul = 1;
        break;
    case 'k':
    case 'K':
        mul = UINT64_C(1) << 10;
        break;
    case 'm':
    case 'M':
        mul = UINT64_C(1) << 20;
        break;
    case 'g':
    case 'G':
        mul = UINT64_C(1) << 30;
        break;
    case 't':
    case 'T':
        mul = UINT64_C(1) << 40;
        break;
    default:
        return -1;
    }
    return scale(n, mul, UINT64_MAX, out);
}

int
config_parse_duration(const char *s, unsigned *out)
{
    uint64_t n, v;
    char unit;
    unsigned mul;

    if (s == NULL || split_unit(s, &n, &unit) < 0)
        return -1;
    /* Lowercase only: "M" could be read as months. */
    switch (unit) {
    case '\0':
    case 's':
        mul = 1;
        break;
    case 'm':
        mul = 60;
        break;
    case 'h':
        mul = 3600;
        break;
    case 'd':
        mul = 86400;
        break;
    default:
        return -1;
    }
    if (scale(n, mul, UINT_MAX, &v) < 0)
        return -1;
    *out = (unsigned)v;
    return 0;
}
