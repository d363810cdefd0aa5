/* runtime/kafka/gen.c -- weir-gen, producers of the seeds' datasets.
 *
 *   weir-gen transactions     --bootstrap 127.0.0.1:9092 --count 100000 --accounts 1000
 *   weir-gen flagged-accounts --bootstrap 127.0.0.1:9092 --accounts 1000 --flagged-share 0.3
 *   weir-gen stocks           --bootstrap 127.0.0.1:9092 --rate 100
 *   weir-gen transactions --print --count 5            # the records, no broker
 *
 * Each dataset writes JSON values and JSON keys the way the seed producers
 * key them:
 *
 *   transactions      {"account_id":1000000003,"customer_id":"C000000003",
 *                      "merchant_type":"Online","transaction_id":"5c0a...",
 *                      "transaction_type":"Gas_Station","transaction_amount":41.07,
 *                      "transaction_date":"2024-01-01 00:00:07.000000"}
 *                     key {"account_id":1000000003,"transaction_id":"5c0a..."}
 *   flagged-accounts  {"account_id":1000000003,"flag_date":"2024-01-01 00:00:01.000000"}
 *                     key {"account_id":1000000003}
 *   stocks            {"event_time":"2024-01-01 00:00:02.000000","ticker":"MSFT","price":63.17}
 *                     key {"ticker":"MSFT"}
 *
 * Determinism. Record i is a function of (seed, i) and the options only: its
 * random fields come from a splitmix64 stream seeded with (seed, i), and its
 * date is --start-date + i * --step. So tests can compute what a run
 * produces (--print writes the same records to stdout) and reason about
 * dates: a transaction is dated before its account's flag exactly when
 * tx_start + i*tx_step < flag_start + j*flag_step. transaction_id is a
 * bijective mix of i, so ids never repeat within a run.
 *
 * Accounts are 1000000001..1000000000+N (--accounts, default 10 as in the
 * seed). The flagged ones are, by default, the odd ids (the seed's rule);
 * with --flagged-share F exactly round(F*N) accounts are flagged: those with
 * the smallest hash of (seed, account). flagged-accounts writes one record
 * per flagged account, in increasing id order (record j is the j-th flagged
 * account); --count may only shorten that list.
 *
 * Partitioning. The partition is chosen here, with Kafka's murmur2
 * partitioner (the Java client's default): flagged-accounts and stocks by
 * their key, transactions by their account's key {"account_id":N}, so all
 * transactions of an account land in one partition, the same partition
 * number its flag lands in when both topics have as many partitions.
 *
 * --malformed K replaces records K, 2K, 3K, ... (1-based) with malformed
 * ones, in turn: not JSON (the record cut in half), a required field missing
 * (transaction_date, flag_date, price), a wrong type (transaction_amount,
 * account_id, price as a string). They keep the key of the record they
 * replace and are counted by --count.
 *
 * The producer batches (linger.ms 5, up to 1 MB batches), is idempotent
 * (acks=all, no duplicates on retry), waits for every delivery report and
 * exits 1 if any record failed, with the broker's error. --rate paces the
 * records (0 = as fast as the broker takes them).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

/* ---- limits and defaults ---------------------------------------------- */

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

#define FIRST_ACCOUNT       1000000001LL
#define DEFAULT_ACCOUNTS    10
#define MAX_ACCOUNTS        10000000LL
#define DEFAULT_COUNT       1000
#define MAX_COUNT           1000000000000LL
#define DEFAULT_START       "2024-01-01 00:00:00.000000"
#define DEFAULT_STEP_US     1000000LL
#define DEFAULT_TIMEOUT_S   30
#define MAX_EXTRA_PROPS     64
#define MAX_DATE_US         253402300799999999LL    /* 9999-12-31 23:59:59.999999 */
#define VALUE_MAX           1024
#define KEY_MAX             128

/* Streams of the per-record generator: one per use, so that changing one
 * option does not shift unrelated fields. */
#define STREAM_RECORD       0x7265636f7264ULL
#define STREAM_TXID         0x74786964ULL
#define STREAM_FLAGGED      0x666c6167ULL

/* ---- deterministic numbers --------------------------------------------- */

static uint64_t
fin64(uint64_t z)                      /* splitmix64's finalizer: a bijection */
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define GOLDEN 0x9e3779b97f4a7c15ULL

typedef struct {
    uint64_t s;
} rng_t;

static void
rng_init(rng_t *r, uint64_t seed, uint64_t stream, uint64_t i)
{
    r->s = fin64(fin64(seed ^ stream) + GOLDEN * (i + 1));
}

static uint64_t
rng_next(rng_t *r)
{
    r->s += GOLDEN;
    return fin64(r->s);
}

/* ---- options ------------------------------------------------------------ */

typedef enum { DS_TRANSACTIONS, DS_FLAGGED, DS_STOCKS } dataset_t;

static const char *const dataset_names[] = { "transactions", "flagged-accounts", "stocks" };

typedef struct {
    dataset_t   dataset;
    const char *bootstrap;             /* borrowed from argv */
    const char *topic;
    long long   count;                 /* -1: the dataset's default */
    double      rate;
    uint64_t    seed;
    long long   accounts;
    double      flagged_share;         /* < 0: the odd accounts */
    int64_t     start_us;
    int64_t     step_us;
    long long   malformed;             /* 0: none */
    bool        print;
    bool        print_keys;
    int         timeout_s;
    const char *props[MAX_EXTRA_PROPS];  /* "key=value", borrowed */
    int         nprops;
} gen_opts_t;

static void
usage(FILE *f)
{
    fprintf(f,
        "usage: weir-gen DATASET (--bootstrap HOST:PORT[,...] | --print) [options]\n"
        "\n"
        "DATASET: transactions, flagged-accounts or stocks (JSON values, JSON keys)\n"
        "\n"
        "  --bootstrap B        Kafka bootstrap servers (default: $KAFKA_BOOTSTRAP)\n"
        "  --topic T            topic (default: the dataset's name)\n"
        "  --count N            records, malformed ones included (default %d; for\n"
        "                       flagged-accounts: one per flagged account)\n"
        "  --rate R             records per second (default 0: as fast as possible)\n"
        "  --seed S             seed of the deterministic records (default 1)\n"
        "  --accounts N         account ids 1000000001..1000000000+N (default %d)\n"
        "  --flagged-share F    flag exactly round(F*N) accounts, chosen by a hash of\n"
        "                       (seed, account) (default: the odd account ids)\n"
        "  --start-date D       date of record 0, 'YYYY-MM-DD[ HH:MM:SS[.ffffff]]' UTC\n"
        "                       (default '%s')\n"
        "  --step DURATION      date increment per record: N followed by us, ms, s, m, h\n"
        "                       or d (default 1s)\n"
        "  --malformed K        make every K-th record malformed, in turn: not JSON,\n"
        "                       a required field missing, a wrong type (default 0: none)\n"
        "  --print              write the values to stdout, one per line; no broker\n"
        "  --print-keys         with --print: write 'KEY<TAB>VALUE' lines\n"
        "  --timeout SEC        delivery timeout per record (default %d)\n"
        "  -X PROP=VALUE        extra librdkafka producer property (repeatable)\n",
        DEFAULT_COUNT, DEFAULT_ACCOUNTS, DEFAULT_START, DEFAULT_TIMEOUT_S);
}

static int
parse_ll(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;

    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int
parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;

    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "YYYY-MM-DD[( |T)HH:MM:SS[.f{1,6}]][Z]" as UTC microseconds since 1970. */
static int
parse_date(const char *s, int64_t *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, frac_digits = 0;
    long frac = 0;
    struct tm tm;
    time_t t;
    const char *p;

    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        return -1;
    p = s + n;
    if (*p == ' ' || *p == 'T') {
        int m = 0;

        if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &m) != 3 || m != 8)
            return -1;
        p += 1 + m;
        if (*p == '.') {
            p++;
            while (*p >= '0' && *p <= '9') {
                if (++frac_digits > 6)
                    return -1;
                frac = frac * 10 + (*p++ - '0');
            }
            if (frac_digits == 0)
                return -1;
            for (int k = frac_digits; k < 6; k++)
                frac *= 10;
        }
    }
    if (*p == 'Z')
        p++;
    if (*p != '\0')
        return -1;
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 59)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != d)         /* e.g. February 30 */
        return -1;
    *out = (int64_t)t * 1000000 + frac;
    return 0;
}

/* "N(us|ms|s|m|h|d)" as microseconds. */
static int
parse_duration(const char *s, int64_t *out)
{
    static const struct { const char *unit; int64_t us; } units[] = {
        { "us", 1 }, { "ms", 1000 }, { "s", 1000000 }, { "m", 60000000 },
        { "h", 3600000000LL }, { "d", 86400000000LL },
    };
    char *end;
    long long v;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || v < 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (v > INT64_MAX / units[i].us)
                return -1;
            *out = (int64_t)v * units[i].us;
            return 0;
        }
    }
    return -1;
}

/* Returns -1 for a usage error, 1 after --help, 0 to run. */
static int
parse_args(int argc, char **argv, gen_opts_t *o)
{
    static const struct option longopts[] = {
        { "bootstrap",     required_argument, NULL, 'b' },
        { "topic",         required_argument, NULL, 't' },
        { "count",         required_argument, NULL, 'c' },
        { "rate",          required_argument, NULL, 'r' },
        { "seed",          required_argument, NULL, 's' },
        { "accounts",      required_argument, NULL, 'a' },
        { "flagged-share", required_argument, NULL, 'f' },
        { "start-date",    required_argument, NULL, 'd' },
        { "step",          required_argument, NULL, 'S' },
        { "malformed",     required_argument, NULL, 'm' },
        { "print",         no_argument,       NULL, 'p' },
        { "print-keys",    no_argument,       NULL, 'k' },
        { "timeout",       required_argument, NULL, 'T' },
        { "help",          no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *dataset = NULL;
    long long v;
    int c;

    memset(o, 0, sizeof(*o));
    o->count = -1;
    o->seed = 1;
    o->accounts = DEFAULT_ACCOUNTS;
    o->flagged_share = -1;
    o->step_us = DEFAULT_STEP_US;
    o->timeout_s = DEFAULT_TIMEOUT_S;
    if (parse_date(DEFAULT_START, &o->start_us) < 0)
        return -1;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hX:", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': o->bootstrap = optarg; break;
        case 't':
            if (*optarg == '\0') {
                fprintf(stderr, "weir-gen: --topic must not be empty\n");
                return -1;
            }
            o->topic = optarg;
            break;
        case 'c':
            if (parse_ll(optarg, 0, MAX_COUNT, &v) < 0) {
                fprintf(stderr, "weir-gen: --count '%s': must be 0..%lld\n", optarg, MAX_COUNT);
                return -1;
            }
            o->count = v;
            break;
        case 'r':
            if (parse_double(optarg, 0, 1e9, &o->rate) < 0) {
                fprintf(stderr, "weir-gen: --rate '%s': must be a number 0..1e9 "
                        "(records per second, 0 = unlimited)\n", optarg);
                return -1;
            }
            break;
        case 's': {
            char *end;

            errno = 0;
            o->seed = strtoull(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || *optarg == '\0' || *optarg == '-') {
                fprintf(stderr, "weir-gen: --seed '%s': must be an unsigned integer\n", optarg);
                return -1;
            }
            break;
        }
        case 'a':
            if (parse_ll(optarg, 1, MAX_ACCOUNTS, &o->accounts) < 0) {
                fprintf(stderr, "weir-gen: --accounts '%s': must be 1..%lld\n", optarg,
                        MAX_ACCOUNTS);
                return -1;
            }
            break;
        case 'f':
            if (parse_double(optarg, 0, 1, &o->flagged_share) < 0) {
                fprintf(stderr, "weir-gen: --flagged-share '%s': must be a number 0..1\n",
                        optarg);
                return -1;
            }
            break;
        case 'd':
            if (parse_date(optarg, &o->start_us) < 0) {
                fprintf(stderr, "weir-gen: --start-date '%s': expected 'YYYY-MM-DD"
                        "[ HH:MM:SS[.ffffff]]' (UTC, 1970..9999)\n", optarg);
                return -1;
            }
            break;
        case 'S':
            if (parse_duration(optarg, &o->step_us) < 0) {
                fprintf(stderr, "weir-gen: --step '%s': expected a whole number followed by "
                        "us, ms, s, m, h or d (e.g. 250ms)\n", optarg);
                return -1;
            }
            break;
        case 'm':
            if (parse_ll(optarg, 0, MAX_COUNT, &o->malformed) < 0) {
                fprintf(stderr, "weir-gen: --malformed '%s': must be 0 (none) or K >= 1 "
                        "(every K-th record)\n", optarg);
                return -1;
            }
            break;
        case 'p': o->print = true; break;
        case 'k': o->print_keys = true; break;
        case 'T':
            if (parse_ll(optarg, 1, 3600, &v) < 0) {
                fprintf(stderr, "weir-gen: --timeout '%s': must be 1..3600 seconds\n", optarg);
                return -1;
            }
            o->timeout_s = (int)v;
            break;
        case 'X':
            if (strchr(optarg, '=') == NULL || *optarg == '=') {
                fprintf(stderr, "weir-gen: -X '%s': expected PROPERTY=VALUE\n", optarg);
                return -1;
            }
            if (o->nprops == MAX_EXTRA_PROPS) {
                fprintf(stderr, "weir-gen: more than %d -X properties\n", MAX_EXTRA_PROPS);
                return -1;
            }
            o->props[o->nprops++] = optarg;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case ':':
            fprintf(stderr, "weir-gen: %s needs a value\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "weir-gen: unknown option '%s' (try --help)\n", argv[optind - 1]);
            return -1;
        }
    }

    if (optind >= argc) {
        fprintf(stderr, "weir-gen: which dataset? transactions, flagged-accounts or stocks "
                "(try --help)\n");
        return -1;
    }
    dataset = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "weir-gen: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    for (int i = 0; i < 3; i++)
        if (strcmp(dataset, dataset_names[i]) == 0) {
            o->dataset = (dataset_t)i;
            goto known;
        }
    fprintf(stderr, "weir-gen: unknown dataset '%s' (transactions, flagged-accounts, stocks)\n",
            dataset);
    return -1;

known:
    if (!o->print && o->bootstrap == NULL && getenv("KAFKA_BOOTSTRAP") != NULL &&
        getenv("KAFKA_BOOTSTRAP")[0] != '\0')
        o->bootstrap = getenv("KAFKA_BOOTSTRAP");
    if (!o->print && o->bootstrap == NULL) {
        fprintf(stderr, "weir-gen: --bootstrap HOST:PORT is required (or --print)\n");
        return -1;
    }
    if (o->print_keys && !o->print) {
        fprintf(stderr, "weir-gen: --print-keys goes with --print\n");
        return -1;
    }
    if (o->topic == NULL)
        o->topic = dataset_names[o->dataset];
    return 0;
}

/* ---- datasets ------------------------------------------------------------ */

static const char *const merchant_types[] = { "Online", "In Store" };
static const char *const transaction_types[] = {
    "Grocery_Store", "Gas_Station", "Shopping_Mall", "City_Services",
    "HealthCare_Service", "Food and Beverage", "Others",
};
static const char *const tickers[] = { "AAPL", "AMZN", "MSFT", "INTC", "TBV" };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    const gen_opts_t *o;
    uint64_t          txid_key;        /* mixes record numbers into transaction ids */
    long long        *flagged;         /* flagged-accounts: ids, ascending (owned) */
    long long         nflagged;
    long long         count;
} gen_t;

typedef struct {
    char   value[VALUE_MAX];
    size_t value_len;
    char   key[KEY_MAX];
    size_t key_len;
    char   pkey[KEY_MAX];              /* the bytes the partition is chosen by */
    size_t pkey_len;
    bool   malformed;
} record_t;

typedef struct {
    uint64_t h;
    long long account;
} ranked_t;

static int
ranked_by_hash(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;

    return x->h < y->h ? -1 : x->h > y->h;
}

static int
ll_ascending(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;

    return x < y ? -1 : x > y;
}

/* Fills g->flagged with the flagged account ids, ascending. */
static int
flagged_compute(gen_t *g)
{
    const gen_opts_t *o = g->o;
    long long n = o->accounts;

    if (o->flagged_share < 0) {
        g->nflagged = (n + 1) / 2;
        g->flagged = malloc((size_t)(g->nflagged > 0 ? g->nflagged : 1) * sizeof(long long));
        if (g->flagged == NULL)
            return -1;
        for (long long j = 0; j < g->nflagged; j++)
            g->flagged[j] = FIRST_ACCOUNT + 2 * j;          /* the odd ids */
        return 0;
    }

    g->nflagged = llround(o->flagged_share * (double)n);
    if (g->nflagged > n)
        g->nflagged = n;
    ranked_t *r = malloc((size_t)n * sizeof(*r));
    g->flagged = malloc((size_t)(g->nflagged > 0 ? g->nflagged : 1) * sizeof(long long));
    if (r == NULL || g->flagged == NULL) {
        free(r);
        return -1;
    }
    uint64_t key = fin64(o->seed ^ STREAM_FLAGGED);
    for (long long a = 0; a < n; a++) {
        r[a].account = FIRST_ACCOUNT + a;
        r[a].h = fin64((uint64_t)a ^ key);                 /* distinct: a bijection */
    }
    qsort(r, (size_t)n, sizeof(*r), ranked_by_hash);
    for (long long j = 0; j < g->nflagged; j++)
        g->flagged[j] = r[j].account;
    free(r);
    qsort(g->flagged, (size_t)g->nflagged, sizeof(long long), ll_ascending);
    return 0;
}

/* "YYYY-MM-DD HH:MM:SS.ffffff" of microseconds since 1970 (UTC). */
static void
format_date(int64_t us, char out[32])
{
    time_t sec = (time_t)(us / 1000000);
    struct tm tm;

    gmtime_r(&sec, &tm);
    snprintf(out, 32, "%04d-%02d-%02d %02d:%02d:%02d.%06d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000));
}

/* Which malformation record i gets: -1 none, 0 not JSON, 1 missing field,
 * 2 wrong type. */
static int
malformed_kind(const gen_opts_t *o, long long i)
{
    if (o->malformed <= 0 || (i + 1) % o->malformed != 0)
        return -1;
    return (int)(((i + 1) / o->malformed - 1) % 3);
}

static size_t
put(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static size_t
put(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static void
make_transaction(const gen_t *g, long long i, int bad, record_t *r)
{
    const gen_opts_t *o = g->o;
    rng_t rng;
    char date[32], txid[17];
    long long account;
    uint64_t cents;
    const char *merchant, *type;

    rng_init(&rng, o->seed, STREAM_RECORD, (uint64_t)i);
    account = FIRST_ACCOUNT + (long long)(rng_next(&rng) % (uint64_t)o->accounts);
    merchant = merchant_types[rng_next(&rng) % NELEM(merchant_types)];
    type = transaction_types[rng_next(&rng) % NELEM(transaction_types)];
    cents = 100 + rng_next(&rng) % 499901;                  /* 1.00 .. 5000.00 */
    snprintf(txid, sizeof(txid), "%016" PRIx64, fin64((uint64_t)i ^ g->txid_key));
    format_date(o->start_us + (int64_t)i * o->step_us, date);

    r->key_len = put(r->key, sizeof(r->key), "{\"account_id\":%lld,\"transaction_id\":\"%s\"}",
                     account, txid);
    r->pkey_len = put(r->pkey, sizeof(r->pkey), "{\"account_id\":%lld}", account);

    if (bad == 1) {                                          /* no transaction_date */
        r->value_len = put(r->value, sizeof(r->value),
            "{\"account_id\":%lld,\"customer_id\":\"C%09lld\",\"merchant_type\":\"%s\","
            "\"transaction_id\":\"%s\",\"transaction_type\":\"%s\","
            "\"transaction_amount\":%" PRIu64 ".%02" PRIu64 "}",
            account, account - 1000000000LL, merchant, txid, type, cents / 100, cents % 100);
    } else if (bad == 2) {                                   /* amount as a string */
        r->value_len = put(r->value, sizeof(r->value),
            "{\"account_id\":%lld,\"customer_id\":\"C%09lld\",\"merchant_type\":\"%s\","
            "\"transaction_id\":\"%s\",\"transaction_type\":\"%s\","
            "\"transaction_amount\":\"%" PRIu64 ".%02" PRIu64 " USD\",\"transaction_date\":\"%s\"}",
            account, account - 1000000000LL, merchant, txid, type, cents / 100, cents % 100, date);
    } else {
        r->value_len = put(r->value, sizeof(r->value),
            "{\"account_id\":%lld,\"customer_id\":\"C%09lld\",\"merchant_type\":\"%s\","
            "\"transaction_id\":\"%s\",\"transaction_type\":\"%s\","
            "\"transaction_amount\":%" PRIu64 ".%02" PRIu64 ",\"transaction_date\":\"%s\"}",
            account, account - 1000000000LL, merchant, txid, type, cents / 100, cents % 100, date);
    }
}

static void
make_flag(const gen_t *g, long long i, int bad, record_t *r)
{
    const gen_opts_t *o = g->o;
    long long account = g->flagged[i];
    char date[32];

    format_date(o->start_us + (int64_t)i * o->step_us, date);
    r->key_len = put(r->key, sizeof(r->key), "{\"account_id\":%lld}", account);
    memcpy(r->pkey, r->key, r->key_len + 1);
    r->pkey_len = r->key_len;
    if (bad == 1)
        r->value_len = put(r->value, sizeof(r->value), "{\"account_id\":%lld}", account);
    else if (bad == 2)
        r->value_len = put(r->value, sizeof(r->value),
                           "{\"account_id\":\"acct-%lld\",\"flag_date\":\"%s\"}", account, date);
    else
        r->value_len = put(r->value, sizeof(r->value),
                           "{\"account_id\":%lld,\"flag_date\":\"%s\"}", account, date);
}

static void
make_stock(const gen_t *g, long long i, int bad, record_t *r)
{
    const gen_opts_t *o = g->o;
    rng_t rng;
    char date[32];
    const char *ticker;
    uint64_t cents;

    rng_init(&rng, o->seed, STREAM_RECORD, (uint64_t)i);
    ticker = tickers[rng_next(&rng) % NELEM(tickers)];
    cents = rng_next(&rng) % 10001;                          /* 0.00 .. 100.00 */
    format_date(o->start_us + (int64_t)i * o->step_us, date);

    r->key_len = put(r->key, sizeof(r->key), "{\"ticker\":\"%s\"}", ticker);
    memcpy(r->pkey, r->key, r->key_len + 1);
    r->pkey_len = r->key_len;
    if (bad == 1)
        r->value_len = put(r->value, sizeof(r->value),
                           "{\"event_time\":\"%s\",\"ticker\":\"%s\"}", date, ticker);
    else if (bad == 2)
        r->value_len = put(r->value, sizeof(r->value),
                           "{\"event_time\":\"%s\",\"ticker\":\"%s\",\"price\":\"n/a\"}", date,
                           ticker);
    else
        r->value_len = put(r->value, sizeof(r->value),
                           "{\"event_time\":\"%s\",\"ticker\":\"%s\",\"price\":%" PRIu64
                           ".%02" PRIu64 "}", date, ticker, cents / 100, cents % 100);
}

/* Record i of the run, into r (reused between records: no allocation). */
static void
make_record(const gen_t *g, long long i, record_t *r)
{
    int bad = malformed_kind(g->o, i);

    switch (g->o->dataset) {
    case DS_TRANSACTIONS: make_transaction(g, i, bad, r); break;
    case DS_FLAGGED:      make_flag(g, i, bad, r); break;
    case DS_STOCKS:       make_stock(g, i, bad, r); break;
    }
    r->malformed = bad >= 0;
    if (bad == 0) {
        /* Not JSON: the record cut in half. */
        r->value_len /= 2;
        r->value[r->value_len] = '\0';
    }
}

/* ---- producing ------------------------------------------------------------ */

static volatile sig_atomic_t stop_requested;

static void
on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct {
    long long delivered;
    long long failed;
    char      first_error[512];
} delivery_t;

static void
dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    delivery_t *d = opaque;

    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        d->delivered++;
        return;
    }
    if (d->failed++ == 0)
        snprintf(d->first_error, sizeof(d->first_error), "%s [%" PRId32 "]: %s",
                 rd_kafka_topic_name(m->rkt), m->partition, rd_kafka_err2str(m->err));
}

static volatile sig_atomic_t fatal_error;

/* Connection trouble is already in the log; say the two things that matter. */
static void
error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];

        rd_kafka_fatal_error(rk, why, sizeof(why));
        fprintf(stderr, "weir-gen: fatal producer error: %s\n", why);
        fatal_error = 1;
    } else if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        fprintf(stderr, "weir-gen: %s\n", reason);
    }
}

static void
log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (level <= LOG_WARNING)
        fprintf(stderr, "weir-gen: librdkafka %s: %s\n", fac, buf);
}

static double
mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static rd_kafka_t *
producer_create(const gen_opts_t *o, delivery_t *d)
{
    char errstr[512], timeout[32];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    const char *defaults[][2] = {
        { "bootstrap.servers", o->bootstrap },
        { "enable.idempotence", "true" },         /* acks=all, no duplicates */
        { "acks", "all" },
        { "linger.ms", "5" },
        { "batch.size", "1000000" },
        { "batch.num.messages", "10000" },
        { "message.timeout.ms", timeout },
        { "log.connection.close", "false" },
    };

    snprintf(timeout, sizeof(timeout), "%d", o->timeout_s * 1000);
    for (size_t i = 0; i < NELEM(defaults); i++) {
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            fprintf(stderr, "weir-gen: %s\n", errstr);
            goto fail;
        }
    }
    for (int i = 0; i < o->nprops; i++) {
        char name[256];
        const char *eq = strchr(o->props[i], '=');
        size_t len = (size_t)(eq - o->props[i]);

        if (len >= sizeof(name)) {
            fprintf(stderr, "weir-gen: -X '%s': property name too long\n", o->props[i]);
            goto fail;
        }
        memcpy(name, o->props[i], len);
        name[len] = '\0';
        if (rd_kafka_conf_set(conf, name, eq + 1, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "weir-gen: -X %s: %s\n", o->props[i], errstr);
            goto fail;
        }
    }
    rd_kafka_conf_set_opaque(conf, d);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "weir-gen: cannot create the producer: %s\n", errstr);
        goto fail;
    }
    return rk;                         /* caller owns: rd_kafka_destroy() */

fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* The topic's partition count, waiting up to timeout_ms for the broker (and
 * for an auto-created topic's leaders). Returns > 0, or -1 after printing
 * why not. */
static int
topic_partitions(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int timeout_ms)
{
    double deadline = mono_s() + timeout_ms / 1000.0;
    const char *why = "no answer";
    char buf[256];

    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        int left = (int)((deadline - mono_s()) * 1000);
        rd_kafka_resp_err_t err;

        if (left < 100)
            left = 100;
        err = rd_kafka_metadata(rk, 0, rkt, &md, left);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            const rd_kafka_metadata_topic_t *t = md->topic_cnt == 1 ? &md->topics[0] : NULL;
            int n = -1;

            if (t != NULL && t->err == RD_KAFKA_RESP_ERR_NO_ERROR && t->partition_cnt > 0)
                n = t->partition_cnt;
            else if (t != NULL) {
                snprintf(buf, sizeof(buf), "%s", rd_kafka_err2str(t->err));
                why = buf;
            }
            rd_kafka_metadata_destroy(md);
            if (n > 0)
                return n;
        } else {
            snprintf(buf, sizeof(buf), "%s", rd_kafka_err2str(err));
            why = buf;
        }
        if (mono_s() >= deadline || stop_requested)
            break;
        rd_kafka_poll(rk, 200);
    }
    fprintf(stderr, "weir-gen: cannot get the partitions of topic '%s' from %s: %s\n",
            rd_kafka_topic_name(rkt), "the broker", why);
    return -1;
}

static int
run_print(const gen_t *g)
{
    record_t r;

    for (long long i = 0; i < g->count && !stop_requested; i++) {
        make_record(g, i, &r);
        if (g->o->print_keys) {
            fwrite(r.key, 1, r.key_len, stdout);
            fputc('\t', stdout);
        }
        fwrite(r.value, 1, r.value_len, stdout);
        fputc('\n', stdout);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "weir-gen: cannot write to stdout: %s\n", strerror(errno));
        return EXIT_FAIL;
    }
    return stop_requested ? EXIT_FAIL : EXIT_OK;
}

static int
run_produce(const gen_t *g)
{
    const gen_opts_t *o = g->o;
    delivery_t d = { 0 };
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt = NULL;
    record_t r;
    long long produced = 0, malformed = 0, undelivered;
    int nparts, rc = EXIT_FAIL;
    double t0, elapsed;

    rk = producer_create(o, &d);
    if (rk == NULL)
        return EXIT_FAIL;
    rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    if (rkt == NULL) {
        fprintf(stderr, "weir-gen: topic '%s': %s\n", o->topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        goto out;
    }
    nparts = topic_partitions(rk, rkt, o->timeout_s * 1000);
    if (nparts < 0)
        goto out;

    t0 = mono_s();
    for (long long i = 0; i < g->count && !stop_requested && !fatal_error; i++) {
        rd_kafka_resp_err_t err;
        int32_t part;

        make_record(g, i, &r);
        if (o->rate > 0) {
            double due = t0 + (double)i / o->rate, now;

            while ((now = mono_s()) < due && !stop_requested) {
                int ms = (int)((due - now) * 1000);
                if (ms < 1)
                    break;                       /* close enough; catch up in bursts */
                rd_kafka_poll(rk, ms);
            }
        }
        part = rd_kafka_msg_partitioner_murmur2(rkt, r.pkey, r.pkey_len, nparts, NULL, NULL);
        for (;;) {
            err = rd_kafka_producev(rk,
                                    RD_KAFKA_V_RKT(rkt),
                                    RD_KAFKA_V_PARTITION(part),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_KEY(r.key, r.key_len),
                                    RD_KAFKA_V_VALUE(r.value, r.value_len),
                                    RD_KAFKA_V_END);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || stop_requested || fatal_error)
                break;
            rd_kafka_poll(rk, 50);               /* the local queue is full: wait */
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;                               /* stopping */
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "weir-gen: cannot produce record %lld to '%s' [%" PRId32 "]: %s\n",
                    i, o->topic, part, rd_kafka_err2str(err));
            goto flush;
        }
        produced++;
        malformed += r.malformed;
        if ((produced & 1023) == 0)
            rd_kafka_poll(rk, 0);
    }
    rc = EXIT_OK;

flush:
    rd_kafka_flush(rk, (o->timeout_s + 10) * 1000);
    undelivered = produced - d.delivered - d.failed;
    elapsed = mono_s() - t0;
    if (d.failed > 0 || undelivered > 0) {
        fprintf(stderr, "weir-gen: %lld of %lld records to '%s' were not delivered%s%s\n",
                d.failed + undelivered, produced, o->topic,
                d.failed > 0 ? "; first error: " : "", d.first_error);
        rc = EXIT_FAIL;
    } else if (fatal_error) {
        fprintf(stderr, "weir-gen: stopped after %lld of %lld records\n", produced, g->count);
        rc = EXIT_FAIL;
    } else if (stop_requested) {
        fprintf(stderr, "weir-gen: interrupted after %lld of %lld records\n", produced, g->count);
        rc = EXIT_FAIL;
    }
    if (rc == EXIT_OK)
        fprintf(stderr, "weir-gen: %s: %lld records (%lld malformed) to topic '%s' "
                "(%d partitions) at %s in %.2f s (%.0f records/s)\n",
                dataset_names[o->dataset], d.delivered, malformed, o->topic, nparts,
                o->bootstrap, elapsed, elapsed > 0 ? (double)d.delivered / elapsed : 0.0);

out:
    if (rd_kafka_outq_len(rk) > 0) {
        /* Undeliverable leftovers (already reported): drop them so that
         * rd_kafka_destroy() does not wait for them. */
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(rk, 0);
    }
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}

int
main(int argc, char **argv)
{
    gen_opts_t o;
    gen_t g;
    struct sigaction sa;
    int pr, rc;

    pr = parse_args(argc, argv, &o);
    if (pr != 0)
        return pr > 0 ? EXIT_OK : EXIT_USAGE;

    memset(&g, 0, sizeof(g));
    g.o = &o;
    g.txid_key = fin64(o.seed ^ STREAM_TXID);
    if (o.dataset == DS_FLAGGED) {
        if (flagged_compute(&g) < 0) {
            fprintf(stderr, "weir-gen: out of memory for %lld accounts\n", o.accounts);
            return EXIT_FAIL;
        }
        if (o.count > g.nflagged) {
            fprintf(stderr, "weir-gen: --count %lld: only %lld of the %lld accounts are flagged "
                    "(one record each)\n", o.count, g.nflagged, o.accounts);
            free(g.flagged);
            return EXIT_USAGE;
        }
        g.count = o.count < 0 ? g.nflagged : o.count;
    } else {
        g.count = o.count < 0 ? DEFAULT_COUNT : o.count;
    }
    if (g.count > 0 && o.step_us > 0 &&
        (int64_t)(g.count - 1) > (MAX_DATE_US - o.start_us) / o.step_us) {
        fprintf(stderr, "weir-gen: %lld records at --step %" PRId64 "us run past the year 9999\n",
                g.count, o.step_us);
        free(g.flagged);
        return EXIT_USAGE;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (!o.print)
        signal(SIGPIPE, SIG_IGN);      /* --print | head: end quietly */

    rc = o.print ? run_print(&g) : run_produce(&g);
    free(g.flagged);
    return rc;
}
