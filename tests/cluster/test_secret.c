/* tests/cluster/test_secret.c -- a cluster with a secret: task managers
 * register with it, and the REST API (not the dashboard's files) wants it
 * as a bearer token; jobctl sends $WEIR_SECRET. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static size_t
sink(char *p, size_t sz, size_t n, void *arg)
{
    strncat(arg, p, 4095 - strlen(arg) < sz * n ? 4095 - strlen(arg) : sz * n);
    return sz * n;
}

/* GET path with an optional Authorization header; the status, the body in
 * body (4 KiB) and whether a WWW-Authenticate header came back. */
static long
get(hc_cluster_t *c, const char *path, const char *auth, char body[4096], bool *challenge)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hd = NULL;
    char url[512], hdrs[4096] = "";
    long st = 0;

    body[0] = '\0';
    snprintf(url, sizeof(url), "%s%s", c->rest, path);
    if (auth != NULL)
        hd = curl_slist_append(hd, auth);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, hdrs);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    *challenge = strstr(hdrs, "WWW-Authenticate: Bearer") != NULL;
    return st;
}

static void
test_rest_wants_the_secret(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 1, .slots = 2, .secret = "s3cret" });
    char body[4096], *out = NULL, *err = NULL;
    bool ch;
    int rc;

    (void)state;
    /* the task manager registered with the secret */
    assert_int_equal(hc_overview_int(c, "taskmanagers"), 1);
    assert_int_equal(get(c, "/overview", NULL, body, &ch), 401);
    assert_true(ch);
    assert_non_null(strstr(body, "\"errors\""));
    assert_non_null(strstr(body, "WEIR_SECRET"));
    assert_int_equal(get(c, "/jobs", "Authorization: Bearer wrong", body, &ch), 401);
    assert_int_equal(get(c, "/metrics", "Authorization: Bearer s3cre", body, &ch), 401);
    assert_int_equal(get(c, "/overview", "Authorization: Bearer s3cret", body, &ch), 200);
    assert_non_null(strstr(body, "\"taskmanagers\""));
    /* the dashboard's files are public: the page asks for the secret */
    assert_int_equal(get(c, "/", NULL, body, &ch), 200);

    unsetenv("WEIR_SECRET");
    rc = hc_jobctl(c, &out, &err, "list", NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "secret"));
    free(out);
    free(err);
    setenv("WEIR_SECRET", "s3cret", 1);
    rc = hc_jobctl(c, &out, &err, "list", NULL);
    unsetenv("WEIR_SECRET");
    assert_int_equal(rc, 0);
    free(out);
    free(err);
    hc_stop(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_rest_wants_the_secret, hc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
