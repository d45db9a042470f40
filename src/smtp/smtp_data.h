/*
 * Decoding a message body as it arrives: DATA (RFC 5321 4.1.1.4, 4.5.2:
 * dot-unstuffing, end only at CRLF.CRLF) and BDAT chunks (RFC 3030: raw).
 * Bare CR and bare LF never end a line for the purpose of the terminator,
 * so no second message can be smuggled in (CVE-2023-51764 and kin): they are
 * either turned into CRLF inside the message (normalize) or flagged so the
 * whole message is refused (reject). The decoded message always uses CRLF.
 */
#ifndef PETREL_SMTP_DATA_H
#define PETREL_SMTP_DATA_H

#include "base/buf.h"

#include <stdbool.h>
#include <stdint.h>

enum smtp_data_state {
    SMTP_DATA_BOL,    /* at the start of a line (after a real CRLF) */
    SMTP_DATA_TEXT,   /* inside a line */
    SMTP_DATA_CR,     /* after CR, waiting to see whether LF follows */
    SMTP_DATA_DOT,    /* after CRLF "." */
    SMTP_DATA_DOT_CR, /* after CRLF "." CR */
};

struct smtp_data {
    struct buf *out; /* borrowed; its max is the message size limit */
    enum smtp_data_state state;
    bool bdat;         /* raw chunks: no dot handling, no terminator */
    bool binary;       /* BODY=BINARYMIME: bytes kept exactly */
    bool reject_bare;  /* bare-newline reject */
    size_t max_line;   /* longest text line accepted, CRLF excluded */
    size_t line_start; /* offset in out of the current line */
    size_t line_len;   /* octets of the current line so far */
    bool in_header;    /* still in the header section */
    unsigned received; /* Received: header fields seen */
    uint64_t size;     /* decoded octets, counted even past the limit */
    bool too_big;      /* out's max was reached; the rest is discarded */
    bool bare_newline; /* a bare CR or LF was seen */
    bool long_line;    /* a line exceeded max_line */
};

void smtp_data_begin(struct smtp_data *d, struct buf *out, bool bdat, bool binary, bool reject_bare,
                     size_t max_line);
/*
 * Consumes input. In DATA mode stops right after the terminating
 * CRLF.CRLF and sets *done; the return value counts the terminator.
 * BDAT mode consumes everything. Returns the octets consumed.
 */
size_t smtp_data_feed(struct smtp_data *d, const char *p, size_t n, bool *done);
/* End of the last BDAT chunk: settles a pending CR and ends the last line
 * with CRLF if the client did not. */
void smtp_data_finish(struct smtp_data *d);

#endif
