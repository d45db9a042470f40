/*
 * petrel: the administration tool. This version checks configurations and
 * lists the spool directly; queue control over the daemon's socket and the
 * sendmail interface come with the queue manager's control channel.
 */
#include "config/config.h"
#include "queue/envelope.h"
#include "queue/spool.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int
usage(void)
{
    fprintf(stderr, "usage: petrel [-c FILE] check\n"
                    "       petrel [-c FILE] queue\n");
    return 2;
}

static int
cmd_check(const char *path)
{
    char err[1024];
    struct config *cf = config_load(path, err, sizeof(err));

    if (cf == NULL) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    printf("%s: configuration ok\n", path);
    config_unref(cf);
    return 0;
}

static void
print_message(void *arg, const char *id)
{
    struct spool *sp = arg;
    struct envelope *e = spool_load(sp, id);
    char when[64];
    time_t t;

    if (e == NULL) {
        printf("%s  (unreadable)\n", id);
        return;
    }
    t = (time_t)e->arrival;
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime(&t));
    printf("%s  %s  <%s>\n", id, when, e->sender);
    for (size_t i = 0; i < e->nrcpts; i++) {
        const struct envelope_rcpt *r = &e->rcpts[i];

        printf("    %-9s <%s>%s%s\n",
               r->state == RCPT_PENDING     ? "pending"
               : r->state == RCPT_DELIVERED ? "delivered"
                                            : "failed",
               r->address, r->kind == RCPT_RELAY ? " (relay)" : "", r->error[0] ? r->error : "");
    }
    envelope_free(e);
}

static int
cmd_queue(const char *path)
{
    char err[1024];
    struct config *cf = config_load(path, err, sizeof(err));
    struct spool *sp;
    size_t n;

    if (cf == NULL) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    snprintf(err, sizeof(err), "%s/queue", cf->spool);
    if (access(err, R_OK) < 0) { /* never create a spool just to list it */
        fprintf(stderr, "petrel: cannot read the spool %s: %s\n", err, strerror(errno));
        config_unref(cf);
        return 1;
    }
    /* The committer thread is never used here: no pool is needed. */
    sp = spool_open(cf->spool, NULL, err, sizeof(err));
    if (sp == NULL) {
        fprintf(stderr, "petrel: %s\n", err);
        config_unref(cf);
        return 1;
    }
    n = spool_scan(sp, print_message, sp);
    printf("-- %zu message%s in the queue\n", n, n == 1 ? "" : "s");
    spool_close(sp);
    config_unref(cf);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *path = "/etc/petrel/petrel.conf";
    int i = 1;

    if (i + 1 < argc && strcmp(argv[i], "-c") == 0) {
        path = argv[i + 1];
        i += 2;
    }
    if (i + 1 != argc)
        return usage();
    if (strcmp(argv[i], "check") == 0)
        return cmd_check(path);
    if (strcmp(argv[i], "queue") == 0)
        return cmd_queue(path);
    return usage();
}
