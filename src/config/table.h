/*
 * Lookup tables loaded from files: `table NAME file:"PATH"`. One entry per
 * line; "#" starts a comment. An entry is a key alone ("alice"), or a key
 * and a value separated by ":" ("sales: alice, bob") or by white space.
 * A first word made only of hex digits, ":", "." and "/" with two or more
 * colons is an IPv6 address or network and stays whole ("2001:db8::/32").
 * Keys compare case-insensitively (ASCII); a key may appear only once.
 * How the value is read depends on the use (users, aliases, networks,
 * domains). Tables are immutable once loaded, so sessions share them.
 */
#ifndef PETREL_TABLE_H
#define PETREL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct table_entry {
    char *key;   /* lowercased */
    char *value; /* "" when the line had only a key */
    int line;    /* line in the file, for error messages */
};

struct table_net {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix;
};

struct table {
    char *name;
    char *path;
    struct table_entry *entries; /* sorted by key */
    size_t nentries;
    struct table_net *nets; /* filled by table_parse_nets() */
    size_t nnets;
};

/*
 * Reads path (a regular file, at most TABLE_FILE_MAX bytes) into a new table
 * owned by the caller (table_free). On error returns NULL and writes one
 * line "PATH:LINE: problem" into err; LINE is 0 when the file itself cannot
 * be read.
 */
#define TABLE_FILE_MAX (64u * 1024 * 1024)
struct table *table_load(const char *name, const char *path, char *err, size_t errlen);
void table_free(struct table *t);
/* The value for key (case-insensitive), "" for a bare key, NULL if absent. */
const char *table_get(const struct table *t, const char *key);
/* Parses every key as an address or CIDR network (192.0.2.0/24, ::1, ...)
 * into t->nets; entries must have no value. Idempotent. Returns 0, or -1
 * with "PATH:LINE: problem" in err (t->nets then stays empty). */
int table_parse_nets(struct table *t, char *err, size_t errlen);
/* Parses one "ADDR" or "ADDR/PREFIX" into n (host bits cleared); 0 or -1.
 * An IPv4-mapped IPv6 network (::ffff:192.0.2.0/120) is stored as IPv4. */
int table_net_parse(const char *s, struct table_net *n);
/* True when sa (AF_INET/AF_INET6; v4-mapped v6 handled) is in a net of t. */
bool table_has_addr(const struct table *t, const struct sockaddr *sa);
bool table_net_contains(const struct table_net *n, const struct sockaddr *sa);

#endif
