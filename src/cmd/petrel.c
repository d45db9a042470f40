/*
 * petrel: the administration tool, and sendmail(1) and mailq(1) when
 * called by those names. Queue listings read the spool directly and need
 * no daemon; flush, delete, hold and release go to petreld over its control
 * socket. Commands, options and exit codes: docs/tools.md.
 */
#include "auth/password.h"
#include "base/fdio.h"
#include "config/config.h"
#include "control/control_client.h"
#include "queue/envelope.h"
#include "smtp/smtp_sasl.h"
#include "submit/sendmail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/petrel/petrel.conf"
#define CONTROL_CLIENT_TIMEOUT_MS 30000
#define JOURNAL_MAX (64u << 20)

/* Exit codes of the petrel commands (sendmail has sysexits). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static int
usage(void)
{
    fprintf(stderr, "usage: petrel [-c FILE] check\n"
                    "       petrel [-c FILE] queue [show ID]\n"
                    "       petrel [-c FILE] mailq\n"
                    "       petrel [-c FILE] flush [DOMAIN|@DOMAIN]\n"
                    "       petrel [-c FILE] delete ID|all\n"
                    "       petrel [-c FILE] hold ID\n"
                    "       petrel [-c FILE] release ID\n"
                    "       petrel [-c FILE] ping\n"
                    "       petrel [-c FILE] sendmail [OPTION...] [RECIPIENT...]\n"
                    "       petrel passwd [--sha512]\n");
    return EXIT_USAGE;
}

static struct config *
load_config(const char *path)
{
    char err[1024];
    struct config *cf = config_load(path, err, sizeof(err));

    if (cf == NULL)
        fprintf(stderr, "%s\n", err);
    return cf;
}

static int
cmd_check(const char *path)
{
    struct config *cf = load_config(path);

    if (cf == NULL)
        return EXIT_USAGE;
    printf("%s: configuration ok\n", path);
    config_unref(cf);
    return EXIT_OK;
}

/* ---- reading the spool ---- */

/* Client-supplied text on a terminal: no control characters. */
static void
print_safe(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        putchar((c < ' ' && c != '\t') || c == 0x7f ? '?' : c);
    }
}

static void
puts_safe(const char *s)
{
    print_safe(s, strlen(s));
}

struct qfile {
    char id[QUEUE_ID_LEN + 1];
    bool held;
};

static void
spool_path(const char *spool, const struct qfile *q, const char *suffix, char *out, size_t n)
{
    snprintf(out, n, "%s/%s/%s%s", spool, q->held ? "hold" : "queue", q->id, suffix);
}

/* Maps a queue file read-only; 0 or -errno. */
static int
qfile_map(const char *spool, const struct qfile *q, const char **map, size_t *len)
{
    char path[4096];

    spool_path(spool, q, "", path, sizeof(path));
    return file_map(path, map, len);
}

/* Applies <id>.state, if any: delivered, failed and deferred recipients. */
static void
qfile_journal(const char *spool, const struct qfile *q, struct envelope *e)
{
    char path[4096], *data;
    struct stat st;
    ssize_t n;
    int fd;

    spool_path(spool, q, ".state", path, sizeof(path));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return;
    if (fstat(fd, &st) == 0 && st.st_size > 0 && (size_t)st.st_size <= JOURNAL_MAX) {
        data = malloc((size_t)st.st_size);
        if (data && (n = read(fd, data, (size_t)st.st_size)) > 0)
            envelope_apply_state(e, data, (size_t)n);
        free(data);
    }
    close(fd);
}

/* The envelope with its journal applied; NULL if gone or unreadable.
 * *size is the message size, trace headers included. */
static struct envelope *
qfile_load(const char *spool, const struct qfile *q, size_t *size)
{
    const char *map;
    size_t len;
    struct envelope *e;

    if (qfile_map(spool, q, &map, &len) < 0)
        return NULL;
    e = envelope_parse(map, len);
    file_unmap(map, len);
    if (e == NULL)
        return NULL;
    *size = len - e->data_offset;
    qfile_journal(spool, q, e);
    return e;
}

static int
qfile_cmp(const void *a, const void *b)
{
    return strcmp(((const struct qfile *)a)->id, ((const struct qfile *)b)->id);
}

/* Queued and held messages, oldest first. -1 if the spool cannot be read. */
static long
spool_list(const char *spool, struct qfile **out)
{
    static const char *const subs[] = {"queue", "hold"};
    struct qfile *list = NULL;
    size_t n = 0;

    for (int s = 0; s < 2; s++) {
        char path[4096];
        struct dirent *de;
        DIR *d;

        snprintf(path, sizeof(path), "%s/%s", spool, subs[s]);
        if ((d = opendir(path)) == NULL) {
            if (s == 1 && errno == ENOENT) /* a spool from before hold/ */
                continue;
            fprintf(stderr, "petrel: cannot read the spool %s: %s\n", path, strerror(errno));
            free(list);
            return -1;
        }
        while ((de = readdir(d)) != NULL) {
            if (!queue_id_valid(de->d_name))
                continue;
            list = realloc(list, (n + 1) * sizeof(*list));
            if (list == NULL)
                abort();
            snprintf(list[n].id, sizeof(list[n].id), "%s", de->d_name);
            list[n++].held = s == 1;
        }
        closedir(d);
    }
    if (n > 1)
        qsort(list, n, sizeof(*list), qfile_cmp);
    *out = list;
    return (long)n;
}

static void
print_time(int64_t t)
{
    char when[64];
    time_t tt = (time_t)t;
    struct tm tm;

    localtime_r(&tt, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    fputs(when, stdout);
}

/* ---- petrel queue ---- */

static const char *
rcpt_state(const struct envelope_rcpt *r)
{
    if (r->state == RCPT_DELIVERED)
        return "delivered";
    if (r->state == RCPT_FAILED)
        return "failed";
    return r->attempts ? "deferred" : "pending";
}

static void
print_rcpt(const struct envelope_rcpt *r)
{
    printf("    %-9s <", rcpt_state(r));
    puts_safe(r->address);
    printf(">%s", r->kind == RCPT_RELAY ? " (relay)" : "");
    if (r->state == RCPT_PENDING && r->attempts) {
        printf(" attempts %u", r->attempts);
        if (r->next_attempt) {
            printf(", next ");
            print_time(r->next_attempt);
        }
    }
    if (r->state != RCPT_DELIVERED && r->error[0]) {
        printf(": ");
        puts_safe(r->error);
    }
    putchar('\n');
}

static void
print_message(const char *spool, const struct qfile *q)
{
    size_t size = 0;
    struct envelope *e = qfile_load(spool, q, &size);

    if (e == NULL) {
        char path[4096];

        spool_path(spool, q, "", path, sizeof(path));
        if (access(path, F_OK) == 0) /* else delivered meanwhile */
            printf("%s  (unreadable)\n", q->id);
        return;
    }
    printf("%s  %8zu  ", q->id, size);
    print_time(e->arrival);
    printf("  <");
    puts_safe(e->sender);
    printf(">%s\n", q->held ? "  held" : "");
    for (size_t i = 0; i < e->nrcpts; i++)
        print_rcpt(&e->rcpts[i]);
    envelope_free(e);
}

static int
queue_list(const char *spool)
{
    struct qfile *list = NULL;
    long n = spool_list(spool, &list);
    size_t held = 0;

    if (n < 0)
        return EXIT_FAIL;
    for (long i = 0; i < n; i++) {
        print_message(spool, &list[i]);
        held += list[i].held;
    }
    printf("-- %ld message%s in the queue", n, n == 1 ? "" : "s");
    if (held)
        printf(" (%zu held)", held);
    printf("\n");
    free(list);
    return EXIT_OK;
}

/* ---- petrel queue show ID ---- */

static const char *
body_name(int body)
{
    return body == 2 ? "BINARYMIME" : body == 1 ? "8BITMIME" : "7BIT";
}

static void
show_envelope(const struct qfile *q, const struct envelope *e, size_t size)
{
    static const char *const ret[] = {"-", "FULL", "HDRS"};
    static const char *const mode[] = {"MAIL", "SEND", "SOML", "SAML"};

    printf("id:         %s\nstatus:     %s\narrival:    ", q->id, q->held ? "held" : "queued");
    print_time(e->arrival);
    printf(" (%lld)\nsize:       %zu\nsender:     <", (long long)e->arrival, size);
    puts_safe(e->sender);
    printf(">\nclient:     ");
    puts_safe(e->client);
    if (e->helo[0]) {
        printf(" (helo ");
        puts_safe(e->helo);
        printf(")");
    }
    printf("\nbody:       %s%s\n", body_name(e->body), e->smtputf8 ? ", SMTPUTF8" : "");
    printf("mode:       %s\ndsn:        ret %s, envid ", mode[e->mode & 3], ret[e->ret % 3]);
    puts_safe(e->envid[0] ? e->envid : "-");
    printf("\nrecipients: %zu\n", e->nrcpts);
    for (size_t i = 0; i < e->nrcpts; i++) {
        const struct envelope_rcpt *r = &e->rcpts[i];

        print_rcpt(r);
        printf("              %s \"", r->kind == RCPT_RELAY ? "relay" : "maildir");
        puts_safe(r->action);
        printf("\"%s", r->user[0] ? " user " : "");
        puts_safe(r->user);
        printf(", given as <");
        puts_safe(r->orig);
        printf(">\n");
    }
}

/* The header section of the message, CRLF shown as LF. */
static void
show_headers(const char *msg, size_t n)
{
    struct str in = str_make(msg, n);

    while (in.len) {
        struct str line = str_cut(&in, '\n');

        if (line.len && line.ptr[line.len - 1] == '\r')
            line.len--;
        if (line.len == 0)
            break;
        print_safe(line.ptr, line.len);
        putchar('\n');
    }
}

static int
queue_show(const char *spool, const char *arg)
{
    struct qfile q = {0};
    const char *map;
    size_t len, size;
    struct envelope *e;

    for (size_t i = 0; arg[i] && i < QUEUE_ID_LEN; i++)
        q.id[i] = arg[i] >= 'a' && arg[i] <= 'f' ? (char)(arg[i] - 'a' + 'A') : arg[i];
    if (strlen(arg) != QUEUE_ID_LEN || !queue_id_valid(q.id)) {
        fprintf(stderr, "petrel: bad queue id \"%s\" (16 hexadecimal digits)\n", arg);
        return EXIT_USAGE;
    }
    if (qfile_map(spool, &q, &map, &len) < 0) {
        q.held = true;
        if (qfile_map(spool, &q, &map, &len) < 0) {
            fprintf(stderr, "petrel: no message %s in the queue\n", q.id);
            return EXIT_FAIL;
        }
    }
    if ((e = envelope_parse(map, len)) == NULL) {
        fprintf(stderr, "petrel: %s: the queue file cannot be parsed\n", q.id);
        file_unmap(map, len);
        return EXIT_FAIL;
    }
    qfile_journal(spool, &q, e);
    size = len - e->data_offset;
    show_envelope(&q, e, size);
    printf("\n");
    show_headers(map + e->data_offset, size);
    envelope_free(e);
    file_unmap(map, len);
    return EXIT_OK;
}

static int
cmd_queue(const char *path, int argc, char **argv)
{
    struct config *cf;
    int rc;

    if (!(argc == 0 || (argc == 2 && strcmp(argv[0], "show") == 0)))
        return usage();
    if ((cf = load_config(path)) == NULL)
        return EXIT_USAGE;
    rc = argc == 0 ? queue_list(cf->spool) : queue_show(cf->spool, argv[1]);
    config_unref(cf);
    return rc;
}

/* ---- control commands ---- */

static int
cmd_control(const char *path, const char *cmd, int argc, char **argv)
{
    char line[CONTROL_LINE_MAX], sock[4096], text[CONTROL_LINE_MAX];
    struct control_request req;
    struct config *cf;
    enum control_result r;

    if (argc > 1)
        return usage();
    snprintf(line, sizeof(line), "%s%s%s", cmd, argc ? " " : "", argc ? argv[0] : "");
    if (control_request_parse(str_cstr(line), &req, text, sizeof(text)) < 0) {
        fprintf(stderr, "petrel: %s: %s\n", cmd, text);
        return EXIT_USAGE;
    }
    if ((cf = load_config(path)) == NULL)
        return EXIT_USAGE;
    if (control_socket_path(cf->spool, sock, sizeof(sock)) < 0) {
        fprintf(stderr, "petrel: the spool path is too long\n");
        config_unref(cf);
        return EXIT_FAIL;
    }
    config_unref(cf);
    r = control_client_request(sock, &req, CONTROL_CLIENT_TIMEOUT_MS, text, sizeof(text));
    if (r == CONTROL_OK) {
        printf("%s\n", text);
        return EXIT_OK;
    }
    if (r == CONTROL_UNREACHABLE)
        fprintf(stderr, "petrel: petreld is not running (cannot connect to %s): %s\n", sock, text);
    else if (r == CONTROL_DENIED)
        fprintf(stderr,
                "petrel: %s: %s: run this as root or as the user petreld runs as (`user`)\n", sock,
                text);
    else if (r == CONTROL_REFUSED)
        fprintf(stderr, "petrel: %s\n", text);
    else
        fprintf(stderr, "petrel: %s: %s\n", sock, text);
    return EXIT_FAIL;
}

/* ---- sendmail and mailq ---- */

/* argv[0] is "sendmail" (or the petrel subcommand). */
static int
cmd_sendmail(const char *path, int argc, char **argv)
{
    struct sendmail_opts o;
    char err[256];

    if (sendmail_parse_args(argc, argv, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "sendmail: %s\n", err);
        return EX_USAGE;
    }
    if (o.mode == SENDMAIL_QUEUE)
        return cmd_queue(o.config ? o.config : path, 0, NULL);
    return sendmail_run(&o, path);
}

/* mailq [-c FILE | -C FILE] */
static int
cmd_mailq(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG;

    if (argc == 3 && (strcmp(argv[1], "-c") == 0 || strcmp(argv[1], "-C") == 0))
        path = argv[2];
    else if (argc != 1)
        return usage();
    return cmd_queue(path, 0, NULL);
}

/* ---- petrel passwd ---- */

/* The terminal settings to restore if a signal ends a prompt. */
static struct termios saved_tty;

static void
restore_tty(int sig)
{
    tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* One line from stdin into buf (size n), read without stdio so that no
 * copy of the password stays in a stdio buffer. Returns its length without
 * the line end, -1 on end of input before any octet or a read error, -2 if
 * it does not fit (the rest of the line is read and dropped). */
static long
read_secret_line(char *buf, size_t n)
{
    size_t len = 0;
    bool too_long = false, any = false;
    ssize_t r;
    char c;

    while ((r = read(STDIN_FILENO, &c, 1)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        any = true;
        if (c == '\n')
            break;
        if (len + 1 < n)
            buf[len++] = c;
        else
            too_long = true;
    }
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    c = 0;
    return too_long ? -2 : any ? (long)len : -1;
}

/* Prompts on stderr with echo off when stdin is a terminal. */
static long
prompt_secret(const char *prompt, bool tty, char *buf, size_t n)
{
    struct termios quiet;
    long len;

    if (!tty)
        return read_secret_line(buf, n);
    fputs(prompt, stderr);
    fflush(stderr);
    quiet = saved_tty;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    signal(SIGINT, restore_tty);
    signal(SIGTERM, restore_tty);
    signal(SIGHUP, restore_tty);
    signal(SIGQUIT, restore_tty);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    len = read_secret_line(buf, n);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    return len;
}

/* Reads the password (twice on a terminal) into pw; 0 or -1 (reported). */
static int
passwd_read(char *pw, size_t n)
{
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tty) == 0;
    char again[PASSWORD_LEN_MAX + 2];
    long len = prompt_secret("Password: ", tty, pw, n);
    const char *problem = NULL;

    if (len == -2 || len > PASSWORD_LEN_MAX)
        problem = "the password is longer than 511 octets";
    else if (len < 0)
        problem = "no password given";
    else if (len == 0)
        problem = "the password is empty";
    else if (!sasl_utf8_valid(str_make(pw, (size_t)len)))
        problem = "the password is not valid UTF-8 (SMTP AUTH sends UTF-8)";
    else if (tty &&
             (prompt_secret("Again: ", tty, again, sizeof(again)) < 0 || strcmp(pw, again) != 0))
        problem = "the passwords differ";
    explicit_bzero(again, sizeof(again));
    if (problem == NULL)
        return 0;
    fprintf(stderr, "petrel: passwd: %s\n", problem);
    return -1;
}

/* petrel passwd [--sha512]: a hash for "name:HASH" in the users table. */
static int
cmd_passwd(int argc, char **argv)
{
    const char *prefix = "$y$";
    char pw[PASSWORD_LEN_MAX + 2], hash[PASSWORD_HASH_MAX];
    int rc = EXIT_FAIL;

    if (argc == 1 && strcmp(argv[0], "--sha512") == 0)
        prefix = "$6$";
    else if (argc != 0)
        return usage();
    if (passwd_read(pw, sizeof(pw)) == 0) {
        if (password_hash(pw, prefix, hash, sizeof(hash)) == 0) {
            printf("%s\n", hash);
            rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
        } else {
            fprintf(stderr, "petrel: passwd: hashing the password failed\n");
        }
    }
    explicit_bzero(pw, sizeof(pw));
    return rc;
}

static const char *
progname(const char *argv0)
{
    const char *slash = strrchr(argv0, '/');

    return slash ? slash + 1 : argv0;
}

int
main(int argc, char **argv)
{
    static const char *const control_cmds[] = {"flush", "delete", "hold", "release", "ping"};
    const char *path = DEFAULT_CONFIG, *cmd;
    int i = 1;

    if (argc > 0 && strcmp(progname(argv[0]), "sendmail") == 0)
        return cmd_sendmail(path, argc, argv);
    if (argc > 0 && strcmp(progname(argv[0]), "mailq") == 0)
        return cmd_mailq(argc, argv);
    if (i + 1 < argc && strcmp(argv[i], "-c") == 0) {
        path = argv[i + 1];
        i += 2;
    }
    if (i >= argc)
        return usage();
    cmd = argv[i++];
    if (strcmp(cmd, "check") == 0)
        return i == argc ? cmd_check(path) : usage();
    if (strcmp(cmd, "queue") == 0)
        return cmd_queue(path, argc - i, argv + i);
    if (strcmp(cmd, "mailq") == 0)
        return i == argc ? cmd_queue(path, 0, NULL) : usage();
    if (strcmp(cmd, "sendmail") == 0)
        return cmd_sendmail(path, argc - i + 1, argv + i - 1);
    if (strcmp(cmd, "passwd") == 0)
        return cmd_passwd(argc - i, argv + i);
    for (size_t k = 0; k < sizeof(control_cmds) / sizeof(control_cmds[0]); k++)
        if (strcmp(cmd, control_cmds[k]) == 0)
            return cmd_control(path, cmd, argc - i, argv + i);
    return usage();
}
