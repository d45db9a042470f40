/*
 * One line per event on stderr: "petreld[pid]: level: message". fatal()
 * appends strerror(errno), fatalx() does not; both exit.
 */
#ifndef PETREL_LOG_H
#define PETREL_LOG_H

#include <stdbool.h>

void log_init(const char *progname, bool debug);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
