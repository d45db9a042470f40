/*
 * The sendmail(1) command line: the options programs use, the message read
 * from standard input, and `-bs`, an SMTP session on stdin/stdout. Exit
 * codes are sysexits(3) (docs/tools.md). The pieces are separate so the
 * unit tests drive them without a process or a spool.
 */
#ifndef PETREL_SENDMAIL_H
#define PETREL_SENDMAIL_H

#include "base/buf.h"
#include "smtp/smtp_reply.h"

#include <stdbool.h>
#include <stddef.h>

enum sendmail_mode {
    SENDMAIL_DELIVER, /* default, -bm: read a message, queue it */
    SENDMAIL_SMTP,    /* -bs: SMTP on stdin/stdout */
    SENDMAIL_QUEUE,   /* -bp: list the queue (mailq) */
};

struct sendmail_opts {
    enum sendmail_mode mode;
    bool extract;         /* -t: recipients from To, Cc, Bcc too */
    bool ignore_dots;     /* -i, -oi: a line "." is not the end */
    const char *sender;   /* -f, -r; NULL = the login name @ hostname */
    const char *fullname; /* -F; NULL = from the password file */
    const char *config;   /* -C FILE; NULL = the caller's default */
    char **rcpts;         /* the arguments after the options (borrowed from argv) */
    int nrcpts;
    unsigned ignored; /* options accepted and ignored (-oem, -odb, -v, ...) */
};

/*
 * Parses the command line (argv[0] is the program name and is skipped).
 * Flags may be grouped ("-ti"); -f, -F, -r, -C and the ignored -B, -N, -R,
 * -V, -X, -h, -L, -O, -A take their value attached or as the next word.
 * Options end at "--" or at the first word not starting with "-".
 * 0, or -1 with err set to a one-line reason.
 */
int sendmail_parse_args(int argc, char **argv, struct sendmail_opts *o, char *err, size_t errlen);

/* The message on standard input, converted as it arrives. */
struct sendmail_input {
    struct buf *out;  /* receives the message, CRLF lines; its max is the size limit */
    bool ignore_dots; /* -i */
    bool done;        /* a line "." ended the message */
    bool too_big;     /* out's max was exceeded */
    struct buf line;  /* the line being read */
    size_t nlines;    /* lines read so far */
};

void sendmail_input_init(struct sendmail_input *in, struct buf *out, bool ignore_dots);
void sendmail_input_free(struct sendmail_input *in);
/*
 * Takes input bytes: LF and CRLF line ends become CRLF (a lone CR is kept),
 * a first line "From ..." (an mbox separator) is dropped, and unless
 * ignore_dots a line that is exactly "." ends the message.
 * Returns the octets used: fewer than n once done. On overflow sets
 * too_big and returns -1.
 */
long sendmail_input_feed(struct sendmail_input *in, const char *p, size_t n);
/* End of input: the last line, if it had no line end. 0, or -1 (too_big). */
int sendmail_input_end(struct sendmail_input *in);

/* The sysexits(3) code for a refused recipient: 67 unknown user, 77
 * relay denied, 65 bad address, 75 temporary, 69 otherwise. */
int sendmail_exit_code(const struct smtp_reply *r);

/* Runs sendmail with o (mode DELIVER or SMTP) against the configuration
 * at config_path (o->config wins). Returns the exit code. */
int sendmail_run(const struct sendmail_opts *o, const char *config_path);

#endif
