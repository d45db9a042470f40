/*
 * Per-client-address accounting for the daemon's abuse limits: the
 * sessions an address holds now (limit connections-per-ip), token buckets
 * for its connection and message rates (limit connection-rate, limit
 * message-rate), and a refusal deadline (auth-throttle). Pure bookkeeping:
 * no sockets, no clock of its own (every call takes `now`, in seconds of a
 * monotonic clock), no logging, no config; the daemon decides what to do.
 *
 * An address is an IPv4 address, or an IPv6 /64: one IPv6 subscriber gets
 * a whole /64, so counting single IPv6 addresses would let a client open
 * 2^64 times the limit. IPv4-mapped IPv6 peers count as their IPv4
 * address.
 *
 * Memory is bounded: at most `cap` entries. An entry is forgotten once it
 * has no session, no throttle and rate state that has fully refilled (60 s
 * after its last event). When the table is full of live entries the least
 * recently idle one is evicted (its rate and throttle state are lost); when
 * every entry holds a session, the new address is not tracked at all and
 * only the global `limit connections` applies to it (fail open: refusing
 * would let a flood of addresses lock everyone out).
 */
#ifndef PETREL_CLIENT_LIMITS_H
#define PETREL_CLIENT_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct client_limits;

struct client_limits_policy {
    unsigned max_per_ip;      /* sessions per address at once; 0 = no limit */
    unsigned connection_rate; /* new sessions per address per minute; 0 = off */
};

enum client_verdict {
    CLIENT_ADMIT,     /* counted: client_limits_disconnect() when it ends */
    CLIENT_UNTRACKED, /* admitted, not counted: the table is full of sessions */
    CLIENT_THROTTLED, /* refused: client_limits_throttle() until a later time */
    CLIENT_TOO_MANY,  /* refused: max_per_ip sessions already */
    CLIENT_TOO_FAST,  /* refused: over connection_rate */
};

/* A table of at most cap entries (cap >= 1). Never NULL (aborts on OOM). */
struct client_limits *client_limits_new(size_t cap);
void client_limits_free(struct client_limits *cl);

/*
 * A new connection from sa. Throttle first, then the session count, then
 * the rate; a refused connection consumes nothing. Addresses that are not
 * IPv4 or IPv6 are always admitted, untracked.
 */
enum client_verdict client_limits_connect(struct client_limits *cl, const struct sockaddr *sa,
                                          const struct client_limits_policy *p, int64_t now);
/* A session of sa counted by client_limits_connect() ended. */
void client_limits_disconnect(struct client_limits *cl, const struct sockaddr *sa, int64_t now);
/* Takes one message from sa's bucket of rate per minute. True if allowed
 * (always with rate 0); false, consuming nothing, when over the rate. */
bool client_limits_message(struct client_limits *cl, const struct sockaddr *sa, unsigned rate,
                           int64_t now);
/* Refuses new connections from sa (its /64 for IPv6) for seconds from now. */
void client_limits_throttle(struct client_limits *cl, const struct sockaddr *sa, unsigned seconds,
                            int64_t now);

/* For tests and logs: entries held, and the sessions counted for sa. */
size_t client_limits_size(const struct client_limits *cl);
unsigned client_limits_sessions(struct client_limits *cl, const struct sockaddr *sa);

#endif
