/*
 * Small descriptor and address helpers. Whole writes to a file descriptor: retried on EINTR and
 * short writes. For blocking descriptors (files, terminals opened O_NONBLOCK give up on EAGAIN like
 * any other error).
 */
#ifndef PETREL_FDIO_H
#define PETREL_FDIO_H

#include <stddef.h>
#include <sys/socket.h>

/* Writes all n octets; 0, or -errno on the first real error. */
int fd_write_all(int fd, const void *p, size_t n) __attribute__((warn_unused_result));

/* Maps the whole regular file at path read-only. 0, -EINVAL for an empty
 * file, or -errno; file_unmap() after. */
int file_map(const char *path, const char **map, size_t *len) __attribute__((warn_unused_result));
void file_unmap(const char *map, size_t len);

/* The numeric address of sa (IPv4, IPv6; v4-mapped IPv6 shown as IPv4). */
const char *sockaddr_text(const struct sockaddr *sa, char *out, size_t n);

#endif
