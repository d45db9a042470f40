/*
 * Whole writes to a file descriptor: retried on EINTR and short writes.
 * For blocking descriptors (files, terminals opened O_NONBLOCK give up on
 * EAGAIN like any other error).
 */
#ifndef PETREL_FDIO_H
#define PETREL_FDIO_H

#include <stddef.h>

/* Writes all n octets; 0, or -errno on the first real error. */
int fd_write_all(int fd, const void *p, size_t n) __attribute__((warn_unused_result));

#endif
