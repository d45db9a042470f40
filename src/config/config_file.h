/*
 * Reading a whole configuration or table file into memory, with the checks
 * both need: a regular file (never a FIFO or device that could block the
 * loader) no larger than a cap. Internal to src/config.
 */
#ifndef PETREL_CONFIG_FILE_H
#define PETREL_CONFIG_FILE_H

#include "base/buf.h"

#include <stddef.h>

/*
 * Reads path into out (initialised here, freed by the caller even on
 * failure). Returns 0, or -1 with a short problem ("No such file or
 * directory", "not a regular file", "larger than N bytes") in why.
 */
int config_file_read(const char *path, size_t max, struct buf *out, char *why, size_t whylen)
    __attribute__((warn_unused_result));

/* ASCII lowercase in place; locale-independent, as keys and domains are. */
void config_ascii_lower(char *s);

#endif
