/*
 * A spooled message's envelope: sender, ESMTP parameters and the expanded
 * recipients with their delivery state. Serialized as text at the head of
 * the queue file (docs/queue-format.md); every field is %-escaped, so a
 * hostile address cannot forge a line.
 */
#ifndef PETREL_ENVELOPE_H
#define PETREL_ENVELOPE_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUEUE_ID_LEN 16

enum rcpt_kind { RCPT_MAILDIR, RCPT_RELAY };
enum rcpt_state { RCPT_PENDING, RCPT_DELIVERED, RCPT_FAILED };

struct envelope_rcpt {
    enum rcpt_kind kind;
    char *action;    /* action name in the config */
    char *user;      /* maildir mailbox; "" for relay */
    char *address;   /* final address */
    char *orig;      /* the address as given in RCPT TO */
    unsigned notify; /* SMTP_NOTIFY_* bits, 0 = not given */
    char *orcpt;     /* RFC 3461 ORCPT, "" if absent */
    enum rcpt_state state;
    char *error;          /* last failure or deferral text, "" if none */
    unsigned attempts;    /* failed attempts so far */
    int64_t next_attempt; /* unix time; 0 = now */
    bool dsn_sent;        /* its final DSN (failure or success) is queued */
    bool dsn_passed;      /* not stored: this pass handed NOTIFY to a DSN peer */
};

struct envelope {
    char id[QUEUE_ID_LEN + 1];
    int64_t arrival;
    char *sender; /* "" = null sender */
    int body;     /* enum smtp_body */
    bool smtputf8;
    int ret;      /* enum smtp_ret */
    char *envid;  /* "" if absent */
    int mode;     /* enum smtp_mode (RFC 821 SEND/SOML/SAML) */
    char *client; /* peer IP, or "local" */
    char *helo;
    struct envelope_rcpt *rcpts;
    size_t nrcpts;
    size_t data_offset; /* where the message starts in the queue file */
    bool warned;        /* the delay DSN was sent */
};

struct envelope *envelope_new(void);
void envelope_free(struct envelope *e);
/* Adds a recipient (strings copied); returns it. */
struct envelope_rcpt *envelope_add_rcpt(struct envelope *e, enum rcpt_kind kind, const char *action,
                                        const char *user, const char *address, const char *orig,
                                        unsigned notify, const char *orcpt);
/* True when a recipient with the same kind, action and address exists. */
bool envelope_has_rcpt(const struct envelope *e, enum rcpt_kind kind, const char *action,
                       const char *address);
/* The domain of r's address ("" without an @). */
const char *envelope_rcpt_domain(const struct envelope_rcpt *r);
/* Recipients not yet final. */
size_t envelope_pending(const struct envelope *e);

/* Text form, ending with the blank line that precedes the message. */
int envelope_write(const struct envelope *e, struct buf *out) __attribute__((warn_unused_result));
/* Parses the head of a queue file; sets data_offset. NULL if malformed. */
struct envelope *envelope_parse(const char *p, size_t n);
/* Applies the .state journal: "d N" delivered, "f N TEXT" failed,
 * "t N NEXT ATTEMPTS TEXT" deferred, "n N" its DSN queued, "w" warned. */
void envelope_apply_state(struct envelope *e, const char *p, size_t n);
/* Appends the journal line for recipient i's current state (kind 'd', 'f',
 * 't' or 'n'), TEXT escaped like envelope fields. */
int envelope_journal_line(const struct envelope *e, size_t i, char kind, struct buf *out)
    __attribute__((warn_unused_result));

/* A new queue id: 16 uppercase hex digits, unique within this host. */
void queue_id_new(char out[QUEUE_ID_LEN + 1]);
/* True when s looks like a queue id (file names in the spool). */
bool queue_id_valid(const char *s);

#endif
