/* HELP texts (RFC 5321 4.1.1.8): the command list and one entry each. */
#include "smtp/smtp_server_impl.h"

#include <stddef.h>

struct help_topic {
    const char *name;
    const char *const lines[4];
};

static const struct help_topic help_topics[] = {
    {"",
     {"Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN ETRN",
      "Legacy: SEND SOML SAML (RFC 821)", "HELP <command> describes one command", NULL}},
    {"HELO", {"HELO <hostname>: identify yourself (plain SMTP)", NULL}},
    {"EHLO", {"EHLO <hostname>: identify yourself and list the extensions", NULL}},
    {"MAIL",
     {"MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8]",
      "          [RET=FULL|HDRS] [ENVID=id]: start a message", NULL}},
    {"RCPT",
     {"RCPT TO:<address> [NOTIFY=NEVER|SUCCESS,FAILURE,DELAY]",
      "         [ORCPT=rfc822;address]: add a recipient", NULL}},
    {"DATA", {"DATA: send the message, ended by a line holding only \".\"", NULL}},
    {"BDAT", {"BDAT <size> [LAST]: send the next <size> octets of the message", NULL}},
    {"RSET", {"RSET: abandon the current message", NULL}},
    {"NOOP", {"NOOP: do nothing", NULL}},
    {"QUIT", {"QUIT: close the connection", NULL}},
    {"HELP", {"HELP [command]: this help", NULL}},
    {"VRFY", {"VRFY <user>: check a local mailbox (if enabled)", NULL}},
    {"EXPN", {"EXPN <list>: expand a mailing list (if enabled)", NULL}},
    {"SEND", {"SEND FROM:<address>: deliver to a logged-in user's terminal (if enabled)", NULL}},
    {"SOML", {"SOML FROM:<address>: terminal if the user is logged in, else mailbox", NULL}},
    {"SAML", {"SAML FROM:<address>: terminal and mailbox", NULL}},
    {"ETRN", {"ETRN <domain> or ETRN @<domain>: deliver the mail queued for it now", NULL}},
    {"AUTH", {"AUTH <mechanism> [initial-response]: authenticate (if offered in EHLO)", NULL}},
    {"ATRN",
     {"ATRN [domain[,domain]...]: after AUTH, receive your domains' mail here (RFC 2645)", NULL}},
    {"STARTTLS", {"STARTTLS: start TLS, then EHLO again (if offered in EHLO)", NULL}},
};

const char *const *
smtp_help_lines(struct str topic)
{
    for (size_t i = 0; i < sizeof(help_topics) / sizeof(help_topics[0]); i++)
        if (str_ieq(topic, help_topics[i].name))
            return help_topics[i].lines;
    return NULL;
}
