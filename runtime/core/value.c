/* runtime/core/value.c -- value comparison, hashing and timestamp text.
 *
 * Timestamps are converted with Howard Hinnant's days-from-civil arithmetic,
 * so no call depends on the process's time zone or locale.
 */
#include "value.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <xxhash.h>

#include "error.h"

static const char *const type_names[] = {
    [WEIR_T_NULL] = "null", [WEIR_T_INT] = "int", [WEIR_T_DOUBLE] = "double",
    [WEIR_T_BOOL] = "bool", [WEIR_T_STRING] = "string", [WEIR_T_BYTES] = "bytes",
    [WEIR_T_TIMESTAMP] = "timestamp",
};

const char *
weir_type_name(weir_type_t t)
{
    if ((unsigned)t >= sizeof(type_names) / sizeof(type_names[0]))
        return NULL;
    return type_names[t];
}

int
weir_type_parse(const char *name)
{
    static const struct { const char *name; weir_type_t t; } aliases[] = {
        { "int", WEIR_T_INT }, { "long", WEIR_T_INT }, { "bigint", WEIR_T_INT },
        { "integer", WEIR_T_INT }, { "double", WEIR_T_DOUBLE }, { "float", WEIR_T_DOUBLE },
        { "bool", WEIR_T_BOOL }, { "boolean", WEIR_T_BOOL }, { "string", WEIR_T_STRING },
        { "varchar", WEIR_T_STRING }, { "bytes", WEIR_T_BYTES },
        { "timestamp", WEIR_T_TIMESTAMP },
    };

    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (strcasecmp(name, aliases[i].name) == 0)
            return (int)aliases[i].t;
    return -1;
}

static bool
is_numeric(const weir_value_t *v)
{
    return v->type == WEIR_T_INT || v->type == WEIR_T_DOUBLE;
}

static int cmp_double(double x, double y);
static int cmp_int_double(int64_t i, double d);

bool
weir_value_equal(const weir_value_t *a, const weir_value_t *b)
{
    if (a->null || b->null)
        return false;
    if (a->type != b->type) {
        if (is_numeric(a) && is_numeric(b)) {
            if (a->type == WEIR_T_INT)
                return !isnan(b->u.d) && cmp_int_double(a->u.i, b->u.d) == 0;
            return !isnan(a->u.d) && cmp_int_double(b->u.i, a->u.d) == 0;
        }
        return false;
    }
    switch ((weir_type_t)a->type) {
    case WEIR_T_INT:
    case WEIR_T_TIMESTAMP: return a->u.i == b->u.i;
    case WEIR_T_DOUBLE:    return a->u.d == b->u.d;
    case WEIR_T_BOOL:      return a->u.b == b->u.b;
    case WEIR_T_STRING:
    case WEIR_T_BYTES:
        return a->len == b->len && (a->len == 0 || memcmp(a->u.s, b->u.s, a->len) == 0);
    case WEIR_T_NULL:      return false;
    }
    return false;
}

#define CMP(x, y) ((x) < (y) ? -1 : (x) > (y) ? 1 : 0)

static int
cmp_double(double x, double y)
{
    if (isnan(x) || isnan(y))
        return CMP(isnan(x), isnan(y));
    return CMP(x, y);
}

/* exact int64 vs double */
static int
cmp_int_double(int64_t i, double d)
{
    double fl;
    int64_t k;

    if (isnan(d) || d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    fl = floor(d);
    k = (int64_t)fl;
    if (i != k)
        return i < k ? -1 : 1;
    return d > fl ? -1 : 0;
}

int
weir_value_compare(const weir_value_t *a, const weir_value_t *b)
{
    if (a->null || b->null)
        return CMP(!a->null, !b->null);
    if (a->type != b->type) {
        if (is_numeric(a) && is_numeric(b)) {
            if (a->type == WEIR_T_INT)
                return cmp_int_double(a->u.i, b->u.d);
            return -cmp_int_double(b->u.i, a->u.d);
        }
        return CMP(a->type, b->type);
    }
    switch ((weir_type_t)a->type) {
    case WEIR_T_INT:
    case WEIR_T_TIMESTAMP: return CMP(a->u.i, b->u.i);
    case WEIR_T_DOUBLE:    return cmp_double(a->u.d, b->u.d);
    case WEIR_T_BOOL:      return CMP(a->u.b, b->u.b);
    case WEIR_T_STRING:
    case WEIR_T_BYTES: {
        uint32_t n = a->len < b->len ? a->len : b->len;
        int c = n ? memcmp(a->u.s, b->u.s, n) : 0;
        return c != 0 ? (c < 0 ? -1 : 1) : CMP(a->len, b->len);
    }
    case WEIR_T_NULL:      return 0;
    }
    return 0;
}

uint64_t
weir_value_hash(const weir_value_t *v, uint64_t seed)
{
    int64_t i;
    uint8_t tag;

    if (v->null)
        return XXH3_64bits_withSeed("\0", 1, seed);
    switch ((weir_type_t)v->type) {
    case WEIR_T_DOUBLE:
        /* integral doubles hash like the int, so 3 and 3.0 meet */
        if (v->u.d == floor(v->u.d) && v->u.d >= -9223372036854775808.0 && v->u.d < 9223372036854775808.0) {
            i = (int64_t)v->u.d;
            return XXH3_64bits_withSeed(&i, sizeof(i), seed);
        }
        return XXH3_64bits_withSeed(&v->u.d, sizeof(v->u.d), seed ^ 0x9e3779b97f4a7c15ull);
    case WEIR_T_INT:
    case WEIR_T_TIMESTAMP:
        i = v->u.i;
        return XXH3_64bits_withSeed(&i, sizeof(i), seed);
    case WEIR_T_BOOL:
        tag = v->u.b ? 2 : 1;
        return XXH3_64bits_withSeed(&tag, 1, seed ^ 0x51ed270b27a1c3d5ull);
    case WEIR_T_STRING:
    case WEIR_T_BYTES:
        return XXH3_64bits_withSeed(v->u.s, v->len, seed);
    case WEIR_T_NULL:
        break;
    }
    return XXH3_64bits_withSeed("\0", 1, seed);
}

/* ---- timestamps ------------------------------------------------------- */

static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int
digits(const char *s, size_t len, size_t *pos, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (*pos >= len || s[*pos] < '0' || s[*pos] > '9')
            return -1;
        v = v * 10 + (s[(*pos)++] - '0');
    }
    *out = v;
    return 0;
}

static int
expect(const char *s, size_t len, size_t *pos, const char *any)
{
    if (*pos >= len || strchr(any, s[*pos]) == NULL || s[*pos] == '\0')
        return -1;
    (*pos)++;
    return 0;
}

int
weir_ts_parse(const char *s, size_t len, int64_t *out_us)
{
    static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y, mo, d, h = 0, mi = 0, se = 0, oh = 0, om = 0;
    int64_t frac = 0, off_us = 0;
    size_t pos = 0;

    if (digits(s, len, &pos, 4, &y) || expect(s, len, &pos, "-") ||
        digits(s, len, &pos, 2, &mo) || expect(s, len, &pos, "-") ||
        digits(s, len, &pos, 2, &d))
        return WEIR_EPARSE;
    if (pos < len) {
        if (expect(s, len, &pos, " Tt") || digits(s, len, &pos, 2, &h) ||
            expect(s, len, &pos, ":") || digits(s, len, &pos, 2, &mi))
            return WEIR_EPARSE;
        if (pos < len && s[pos] == ':') {
            pos++;
            if (digits(s, len, &pos, 2, &se))
                return WEIR_EPARSE;
        }
        if (pos < len && s[pos] == '.') {
            int nd = 0;
            pos++;
            while (pos < len && s[pos] >= '0' && s[pos] <= '9') {
                if (nd < 6) {
                    frac = frac * 10 + (s[pos] - '0');
                    nd++;
                }
                pos++;
            }
            if (nd == 0)
                return WEIR_EPARSE;
            for (; nd < 6; nd++)
                frac *= 10;
        }
        if (pos < len && (s[pos] == 'Z' || s[pos] == 'z')) {
            pos++;
        } else if (pos < len && (s[pos] == '+' || s[pos] == '-')) {
            int sign = s[pos++] == '-' ? -1 : 1;
            if (digits(s, len, &pos, 2, &oh))
                return WEIR_EPARSE;
            if (pos < len && s[pos] == ':')
                pos++;
            if (digits(s, len, &pos, 2, &om))
                return WEIR_EPARSE;
            off_us = sign * ((int64_t)oh * 3600 + om * 60) * 1000000;
        }
    }
    if (pos != len || mo < 1 || mo > 12 || d < 1 || (unsigned)d > mdays[mo - 1] ||
        h > 23 || mi > 59 || se > 60 || oh > 23 || om > 59)
        return WEIR_EPARSE;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return WEIR_EPARSE;
    *out_us = (days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
               (int64_t)h * 3600 + mi * 60 + se) * 1000000 + frac - off_us;
    return 0;
}

void
weir_ts_format(int64_t us, char out[32])
{
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) { frac += 1000000; secs--; }
    int64_t days = secs / 86400, rem = secs % 86400, y;
    if (rem < 0) { rem += 86400; days--; }
    unsigned m, d;

    civil_from_days(days, &y, &m, &d);
    snprintf(out, 32, "%04lld-%02u-%02u %02d:%02d:%02d.%06lld", (long long)y, m, d,
             (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (long long)frac);
}

int64_t
weir_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t
weir_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
