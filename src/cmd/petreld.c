/* petreld: the mail server daemon. Runs in the foreground, logs to stderr. */
#include "base/log.h"
#include "config/config.h"
#include "inbound/daemon.h"

#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void
usage(void)
{
    fprintf(stderr, "usage: petreld -c FILE [-n] [-d]\n"
                    "  -c FILE  configuration file\n"
                    "  -n       check the configuration and exit (0 good, 2 bad)\n"
                    "  -d       debug logging\n");
    exit(2);
}

static int
check_only(const char *path)
{
    char err[1024];
    struct config *cf = config_load(path, err, sizeof(err));

    if (cf == NULL) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    config_unref(cf);
    printf("%s: configuration ok\n", path);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *path = NULL;
    int ch, check = 0, debug = 0, rc;
    struct daemon d;

    while ((ch = getopt(argc, argv, "c:nd")) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'n':
            check = 1;
            break;
        case 'd':
            debug = 1;
            break;
        default:
            usage();
        }
    }
    if (path == NULL || optind != argc)
        usage();
    log_init("petreld", debug);
    if (check)
        return check_only(path);
    /* Worker threads hand results back to the loop with event_active(). */
    if (evthread_use_pthreads() < 0) {
        fprintf(stderr, "petreld: libevent has no pthreads support\n");
        return 1;
    }
    /* Whatever the caller's umask: nothing petreld creates (spool, control
     * socket, Maildirs) is for other users; the modes it asks for are
     * 0700 and 0600 anyway, this covers what a library might create. */
    umask(077);
    if ((rc = daemon_start(&d, path)) != 0)
        return rc;
    return daemon_run(&d);
}
